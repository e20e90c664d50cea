"""Settings come from the environment, and production refuses to start half-configured."""

import importlib.util
import os
import secrets
import subprocess
import sys
from pathlib import Path

import kombu
import pytest
from django.core.exceptions import ImproperlyConfigured

from config import settings as live_settings

ROOT = Path(__file__).resolve().parents[2]
# Every variable the settings module reads; each test starts from none of them set.
SETTINGS_VARIABLES = [
    "ALONGSIDE_ENV",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "SITE_URL",
    "DATABASE_URL",
    "DB_CONN_MAX_AGE",
    "DB_POOL_MAX_SIZE",
    "REDIS_URL",
    "CHANNEL_PREFIX",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_PRELOAD",
    "BEHIND_TLS_PROXY",
    "STATIC_ROOT",
    "EMAIL_BACKEND",
]


def production_environment(tmp_path) -> dict[str, str]:
    return {
        "ALONGSIDE_ENV": "production",
        "ALONGSIDE_VAR_DIR": str(tmp_path),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "alongside.example.org",
        "SITE_URL": "https://alongside.example.org",
        "DATABASE_URL": "postgres://alongside:secret@db.example.org:5432/alongside",
        "REDIS_URL": "redis://redis.example.org:6379/0",
    }


@pytest.fixture
def load_settings(monkeypatch, tmp_path):
    """Execute config/settings.py afresh under the given environment and return the module."""

    def load(**environment):
        for name in SETTINGS_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("ALONGSIDE_VAR_DIR", str(tmp_path))
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        spec = importlib.util.spec_from_file_location("settings_under_test", ROOT / "config" / "settings.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    environment.update(production_environment(tmp_path))
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "SITE_URL"])
def test_production_without_a_required_value_fails_loudly(load_settings, tmp_path, missing):
    environment = production_environment(tmp_path)
    del environment[missing]
    with pytest.raises(ImproperlyConfigured, match=missing):
        load_settings(**environment)


def test_production_settings_turn_on_https_hardening_and_stay_out_of_debug(load_settings, tmp_path):
    loaded = load_settings(**production_environment(tmp_path))
    assert loaded.DEBUG is False
    assert loaded.SECURE_SSL_REDIRECT is True
    assert loaded.SESSION_COOKIE_SECURE is True
    assert loaded.CSRF_COOKIE_SECURE is True
    assert loaded.SECURE_HSTS_SECONDS >= 31536000
    assert loaded.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    assert loaded.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"


def test_an_unknown_environment_name_is_refused(load_settings):
    with pytest.raises(ImproperlyConfigured, match="ALONGSIDE_ENV"):
        load_settings(ALONGSIDE_ENV="staging")


def test_development_defaults_need_no_server(load_settings, tmp_path):
    loaded = load_settings()
    assert loaded.DATABASES["default"]["ENGINE"] == "config.sqlite"
    assert Path(loaded.DATABASES["default"]["NAME"]).parent == tmp_path
    assert loaded.CHANNEL_LAYERS["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
    assert loaded.CELERY_BROKER_URL == "filesystem://"
    assert Path(loaded.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]).is_dir()


def test_the_filesystem_broker_writes_only_under_var(load_settings, tmp_path, monkeypatch):
    """kombu keeps its exchange tables in ./control unless told: `make run` and test runs
    without Redis left that directory in whatever directory they ran in."""
    loaded = load_settings()
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    options = loaded.CELERY_BROKER_TRANSPORT_OPTIONS
    with kombu.Connection(loaded.CELERY_BROKER_URL, transport_options=options) as broker:
        queue = kombu.Queue("celery", kombu.Exchange("celery"), routing_key="celery")
        broker.Producer().publish(
            {"task": "noop"}, exchange=queue.exchange, routing_key="celery", declare=[queue]
        )
    assert list(workdir.iterdir()) == []
    assert (Path(options["control_folder"]) / "celery.exchange").is_file()
    assert len(list(Path(options["data_folder_out"]).iterdir())) == 1


def test_database_url_picks_postgres_with_a_connect_timeout(load_settings):
    loaded = load_settings(
        DATABASE_URL="postgres://alice:pw@db.example.org:6543/alongside", DB_CONN_MAX_AGE="30"
    )
    database = loaded.DATABASES["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("db.example.org", 6543, "alongside")
    assert database["CONN_MAX_AGE"] == 30
    assert database["OPTIONS"]["connect_timeout"] == 5


def test_redis_url_picks_the_redis_channel_layer_and_broker(load_settings):
    loaded = load_settings(REDIS_URL="redis://cache.example.org:6379/3", CHANNEL_PREFIX="ward")
    layer = loaded.CHANNEL_LAYERS["default"]
    assert layer["BACKEND"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert layer["CONFIG"] == {"hosts": ["redis://cache.example.org:6379/3"], "prefix": "ward"}
    assert loaded.CELERY_BROKER_URL == "redis://cache.example.org:6379/3"


def test_numbers_and_lists_are_read_from_the_environment(load_settings):
    loaded = load_settings(
        SESSION_IDLE_MINUTES="30",
        LOGIN_FAILURE_LIMIT="3",
        ALLOWED_HOSTS=" a.example.org, ,b.example.org ",
        DEBUG="off",
    )
    assert loaded.SESSION_COOKIE_AGE == 30 * 60
    assert loaded.AXES_FAILURE_LIMIT == 3
    assert loaded.ALLOWED_HOSTS == ["a.example.org", "b.example.org"]
    assert loaded.DEBUG is False


@pytest.mark.parametrize("value", ["maybe", "2", "yes please"])
def test_env_bool_refuses_a_value_that_is_not_true_or_false(monkeypatch, value):
    monkeypatch.setenv("SOME_FLAG", value)
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG must be true or false"):
        live_settings.env_bool("SOME_FLAG", False)


@pytest.mark.parametrize(("value", "expected"), [("TRUE", True), ("1", True), ("No", False), ("", True)])
def test_env_bool_reads_the_usual_spellings(monkeypatch, value, expected):
    monkeypatch.setenv("SOME_FLAG", value)
    assert live_settings.env_bool("SOME_FLAG", True) is expected


@pytest.mark.parametrize("value", ["ten", "1.5", "12 minutes"])
def test_env_int_refuses_a_value_that_is_not_a_whole_number(monkeypatch, value):
    monkeypatch.setenv("SOME_NUMBER", value)
    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER must be a whole number"):
        live_settings.env_int("SOME_NUMBER", 5)


def test_a_bad_number_in_the_environment_stops_the_settings_from_loading(load_settings):
    with pytest.raises(ImproperlyConfigured, match="LOGIN_FAILURE_LIMIT"):
        load_settings(LOGIN_FAILURE_LIMIT="five")


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv("SOME_LIST", "https://a.example.org,, https://b.example.org ")
    assert live_settings.env_list("SOME_LIST", []) == ["https://a.example.org", "https://b.example.org"]
    monkeypatch.setenv("SOME_LIST", "")
    assert live_settings.env_list("SOME_LIST", ["default"]) == ["default"]


@pytest.mark.parametrize("value", [",", " , ", " "])
def test_env_list_refuses_a_list_that_is_set_but_empty(monkeypatch, value):
    monkeypatch.setenv("SOME_LIST", value)
    with pytest.raises(ImproperlyConfigured, match="SOME_LIST must be a comma-separated list"):
        live_settings.env_list("SOME_LIST", ["default"])


def test_db_pool_max_size_turns_on_the_postgres_connection_pool(load_settings):
    loaded = load_settings(DATABASE_URL="postgres://alice:pw@db.example.org/alongside", DB_POOL_MAX_SIZE="8")
    assert loaded.DATABASES["default"]["OPTIONS"]["pool"]["max_size"] == 8
    # Pooled connections live long enough to reuse prepared statements; that needs server binding.
    assert loaded.DATABASES["default"]["OPTIONS"]["prepare_threshold"] == 2
    assert loaded.DATABASES["default"]["OPTIONS"]["server_side_binding"] is True


def test_without_a_pool_postgres_binds_on_the_server_but_prepares_nothing(load_settings):
    options = load_settings(DATABASE_URL="postgres://alice:pw@db.example.org/alongside").DATABASES["default"][
        "OPTIONS"
    ]
    assert options["server_side_binding"] is True
    assert "prepare_threshold" not in options and "pool" not in options


def test_a_pool_and_persistent_connections_together_are_refused(load_settings):
    with pytest.raises(ImproperlyConfigured, match="DB_POOL_MAX_SIZE or DB_CONN_MAX_AGE"):
        load_settings(
            DATABASE_URL="postgres://alice:pw@db.example.org/alongside",
            DB_POOL_MAX_SIZE="8",
            DB_CONN_MAX_AGE="60",
        )
