"""/healthz/ answers 200 only when the database, the channel layer and the broker all answer."""

import os
import socket

import pytest
from channels.layers import channel_layers, get_channel_layer
from django.urls import reverse

from config import health

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0"


def redis_layer(url: str) -> dict:
    backend = "channels_redis.pubsub.RedisPubSubChannelLayer"
    return {"default": {"BACKEND": backend, "CONFIG": {"hosts": [url]}}}


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


@pytest.mark.services
async def test_the_channel_layer_check_leaves_no_subscription_behind(settings):
    # The pub/sub layer keeps a channel (and its Redis subscription) until a receive on it is
    # cancelled: a probe every 15 s must not add one each time.
    url = os.environ.get("REDIS_URL", "")
    if not url.startswith("redis://"):
        pytest.fail("this test needs Redis: set REDIS_URL")
    settings.CHANNEL_LAYERS = redis_layer(url)
    channel_layers.backends.clear()
    try:
        layer = get_channel_layer()
        assert await health.check_channel_layer()
        assert await health.check_channel_layer()
        loop_layer = layer._get_layer()
        assert loop_layer.channels == {}
        assert all(not shard._subscribed_to for shard in loop_layer._shards)
    finally:
        await get_channel_layer().flush()
        channel_layers.backends.clear()
