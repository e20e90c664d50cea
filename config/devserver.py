"""`make run`: the ASGI server, a Celery worker and Celery beat together, stopped together.

Ctrl-C (or SIGTERM) stops every process this started, and waits for them, so running it
again finds the port free.
"""

import os
import signal
import subprocess  # nosec B404  # starts the dev stack's own fixed commands
import sys
import time

from config import server
from config.testenv import answers

HOST = os.environ.get("HOST", "127.0.0.1")
PORT = os.environ.get("PORT", "8000")


def commands() -> dict[str, list[str]]:
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "config"]
    # The filesystem broker has no fan-out, so the worker's remote control is off there.
    remote = (
        [] if os.environ.get("REDIS_URL") else ["--without-mingle", "--without-gossip", "--without-heartbeat"]
    )
    return {
        "web": server.command(HOST, PORT),
        "worker": [*celery, "worker", "--loglevel=INFO", "--concurrency=2", *remote],
        "beat": [*celery, "beat", "--loglevel=INFO"],
    }


def main() -> int:
    processes: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, command in commands().items():
        # Own process group: Ctrl-C reaches us once, and we stop the children in order.
        processes[name] = subprocess.Popen(command, start_new_session=True)  # nosec B603  # commands() is fixed
    exit_code = 0
    announced = False
    while not stopping:
        # Announce the address only once the server answers, so the link works when it appears.
        if not announced and answers(HOST, int(PORT)):
            print(
                f"Alongside is at http://{HOST}:{PORT}/  (Ctrl-C stops the server, worker and beat)",
                flush=True,
            )
            announced = True
        for name, process in processes.items():
            if process.poll() is not None:
                print(f"{name} exited with {process.returncode}; stopping the rest.", file=sys.stderr)
                exit_code, stopping = process.returncode or 1, True
                break
        time.sleep(0.5)
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    print("Stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
