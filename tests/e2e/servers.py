"""Real ASGI servers for tests that need sockets across processes: config.server on the test database.

pytest-django's live_server cannot serve WebSockets, so these tests start the server themselves,
pointed at the test database (tests using it need django_db(transaction=True) so their rows are
committed where the server can see them) and at the same Redis channel layer.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from config.server import command as server_command

ROOT = Path(__file__).resolve().parents[2]
READY_WITHIN = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_database_url() -> str:
    db = connection.settings_dict
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


class AsgiServer:
    """One server process (config.server). `kill()` is a crash (SIGKILL), not a clean shutdown."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.process = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "AsgiServer":
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DEBUG": "false",
        }
        # Browser tests set this for their own process (Playwright's sync API runs an event loop);
        # the server must keep Django's guard against sync database calls in async code.
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.process = subprocess.Popen(
            server_command("127.0.0.1", self.port),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.wait_until_listening()
        return self

    def wait_until_listening(self) -> None:
        """Poll the port until the server accepts connections (a readiness check, not a timing guess)."""
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the server did not listen on {self.port} within {READY_WITHIN}s")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
