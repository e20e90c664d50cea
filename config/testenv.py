"""`make test`: choose what the suite runs against, say so, then run it.

Postgres and Redis are used when DATABASE_URL / REDIS_URL are set or when they answer on
their usual loopback ports; otherwise SQLite and the in-memory channel layer. Under CI=true
both services are required. Browser tests run in their own pytest process, after the rest,
because the sync Playwright API leaves an event loop running.
"""

import os
import socket
import subprocess  # nosec B404  # runs pytest for make test
import sys

LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/test"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def choose_services(environ: dict) -> dict:
    env = dict(environ)
    if not env.get("DATABASE_URL") and answers("127.0.0.1", 5432):
        env["DATABASE_URL"] = LOCAL_POSTGRES
    if not env.get("REDIS_URL") and answers("127.0.0.1", 6379):
        env["REDIS_URL"] = LOCAL_REDIS
    return env


def main() -> int:
    env = choose_services(os.environ)
    database = env.get("DATABASE_URL", "")
    redis = env.get("REDIS_URL", "")
    in_ci = env.get("CI", "").lower() == "true"
    if in_ci and not (database.startswith("postgres") and redis):
        print("CI=true needs Postgres and Redis; start them (see .ci/run).", file=sys.stderr)
        return 2
    where_db = f"PostgreSQL ({database.split('@')[-1]})" if database else "SQLite (var/test.sqlite3)"
    print(f"Database: {where_db}")
    where_redis = f"Redis ({redis.split('@')[-1]})" if redis else "in-memory"
    print(f"Channel layer and broker: {where_redis}")
    pytest = [sys.executable, "-m", "pytest", *sys.argv[1:]]
    first = subprocess.call([*pytest, "-m", "not browser"], env=env)  # nosec B603  # our own pytest
    if first not in (0,):
        return first
    second = subprocess.call([*pytest, "-m", "browser"], env=env)  # nosec B603  # our own pytest
    return 0 if second == 5 and not browser_tests_expected() else second


def browser_tests_expected() -> bool:
    return os.path.isdir(os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))


if __name__ == "__main__":
    sys.exit(main())
