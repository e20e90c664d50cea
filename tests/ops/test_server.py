"""config.server: what the served process does before it accepts a connection."""

import gc

from config import server


def test_serving_freezes_what_exists_at_startup_then_runs_uvicorn_with_our_options(monkeypatch):
    """Without the freeze, each full collection walks Django's ~85,000 startup objects: a 40-65 ms
    stop of the event loop, the live room's p99 (docs/performance.md)."""
    calls = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **options: calls.append((app, options)))
    gc.unfreeze()
    try:
        server.main(["--host", "127.0.0.1", "--port", "8123"])
        assert gc.get_freeze_count() > 10_000  # the application's modules and objects
    finally:
        gc.unfreeze()
    assert calls == [("config.asgi:application", {"host": "127.0.0.1", "port": 8123, **server.OPTIONS})]
