"""docker-compose.yml is valid, names the whole stack, and refuses to start without its secrets."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {
    "SECRET_KEY": "a-long-random-secret-for-the-compose-test",
    "ALLOWED_HOSTS": "alongside.example.org",
    "SITE_URL": "https://alongside.example.org",
    "POSTGRES_PASSWORD": "compose-test-password",
    "EMAIL_HOST": "smtp.example.org",
    "DEFAULT_FROM_EMAIL": "Alongside <alongside@example.org>",
}


def compose(*arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    executable = shutil.which("docker-compose")
    if executable is None:
        pytest.skip("docker-compose is not installed (.ci/run installs it)")
    # Only PATH from the outside: nothing in the developer's shell may satisfy a ${VAR:?}.
    env = {"PATH": os.environ["PATH"], **environment}
    return subprocess.run(
        [executable, "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"), *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_is_valid_with_the_required_environment():
    result = compose("config", "-q", environment=REQUIRED)
    assert result.returncode == 0, result.stderr


def test_compose_names_postgres_redis_web_worker_and_beat():
    result = compose("config", "--services", environment=REQUIRED)
    assert result.returncode == 0, result.stderr
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(result.stdout.split())


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_refuses_to_start_without_a_required_value(missing):
    environment = {name: value for name, value in REQUIRED.items() if name != missing}
    result = compose("config", "-q", environment=environment)
    assert result.returncode != 0
    assert missing in result.stderr
