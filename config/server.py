"""The ASGI server, started the same way everywhere: `make run`, docker-compose, the browser
tests, the fault rig and the benchmarks all run `python -m config.server --host H --port P`.

uvicorn, with the `websockets` library's sans-I/O protocol for sockets, on the standard asyncio
loop (no uvloop, so the live bench's raw `websockets` baseline runs on the same loop), and
httptools to parse HTTP: h11, pure Python, served hello-world at 271 requests/s where httptools
served 321-419 in the same hour (the socket frames never go through either). It replaced
daphne, whose Twisted and autobahn layers cost about a fifth more instructions per delivered
room message (docs/performance.md). Settings that differ from uvicorn's defaults keep what
daphne did: no compression of frames (small JSON; deflate would cost CPU per socket per frame),
the peer's address as the client's (no proxy headers), no access log.

Before serving, the application is loaded and every object alive at that point (Django, the
models, the URL routes: about 85,000) is moved out of the garbage collector's reach with
gc.freeze(). Otherwise each full collection walked all of them, a 40-65 ms stop of the event
loop about every ten seconds under room traffic, and that pause was the live bench's p99
(docs/performance.md). What the server allocates afterwards is collected as usual.
"""

import argparse
import gc
import importlib
import sys

import uvicorn

APPLICATION = "config.asgi:application"
OPTIONS = {
    "ws": "websockets-sansio",
    "ws_per_message_deflate": False,
    "loop": "asyncio",
    "http": "httptools",
    "lifespan": "off",  # Channels' ProtocolTypeRouter has no lifespan application
    "proxy_headers": False,
    "access_log": False,
    "log_config": None,  # Django's LOGGING (config.settings) handles uvicorn's loggers too
}


def command(host: str, port: int | str) -> list[str]:
    """The command line that serves the product on host:port, for the tools that start it."""
    return [sys.executable, "-m", "config.server", "--host", host, "--port", str(port)]


def freeze_startup_objects() -> None:
    """Load the application and take what exists now out of the collector's generations. Objects
    frozen here are never collected, so this runs once, before the first connection."""
    importlib.import_module(APPLICATION.partition(":")[0])
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve Alongside (HTTP and WebSockets).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    freeze_startup_objects()
    uvicorn.run(APPLICATION, host=args.host, port=args.port, **OPTIONS)


if __name__ == "__main__":
    main()
