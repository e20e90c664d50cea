"""/healthz/ answers 200 only when the database, the channel layer and the broker all answer."""

import socket

import pytest
from django.urls import reverse

from config import health

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0"


def redis_layer(url: str) -> dict:
    return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [url]}}}


def test_healthz_reports_every_dependency_ok_without_signing_in(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "channel_layer": "ok", "broker": "ok"}
    assert "no-store" in response.headers["Cache-Control"]


def test_healthz_is_503_and_names_what_failed_when_redis_is_down(client, settings):
    settings.CHANNEL_LAYERS = redis_layer(DEAD_REDIS)
    settings.CELERY_BROKER_URL = DEAD_REDIS
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "channel_layer": "error", "broker": "error"}


def test_healthz_gives_up_on_a_redis_that_accepts_but_never_answers(client, settings):
    # A listening socket nobody reads: connections succeed, replies never come.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        settings.CHANNEL_LAYERS = redis_layer(url)
        settings.CELERY_BROKER_URL = url
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
        response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["channel_layer"] == "error"
    assert response.json()["broker"] == "error"


def test_healthz_is_503_when_the_filesystem_broker_folder_is_gone(client, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    missing = str(tmp_path / "missing")
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": missing, "data_folder_out": missing}
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["broker"] == "error"


def test_healthz_is_503_when_the_database_fails(client, monkeypatch):
    def broken_database():
        raise ConnectionError("database unreachable")

    monkeypatch.setitem(health.CHECKS, "database", broken_database)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["database"] == "error"


def test_healthz_refuses_post(client):
    assert client.post(reverse("healthz")).status_code == 405
