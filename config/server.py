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
"""

import argparse
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve Alongside (HTTP and WebSockets).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvicorn.run(APPLICATION, host=args.host, port=args.port, **OPTIONS)


if __name__ == "__main__":
    main()
