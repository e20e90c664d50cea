"""Reusable pieces for HTTP benchmarks: a throwaway served product and a loopback load generator.

    with served_product() as site:                       # migrated, seeded, config.server on a free port
        cookie = site.sign_in("alex@riverside.example")  # any demo person (see accounts/demo.py)
        row = compare(
            site,
            name="signed-in home page",
            path="/",
            baseline_name="hello world",
            baseline_path=HELLO_PATH,
            cookie=cookie,
            target="ratio >= 0.25",
        )

`served_product()` makes a fresh database (a SQLite file in a temporary folder, or a new
Postgres database beside DATABASE_URL's when that is set, dropped afterwards), runs migrate
and seed_demo, and starts config.server with DJANGO_SETTINGS_MODULE=bench.settings: the product's
settings and URLs plus the hello-world baseline, with DEBUG off. `setup` takes extra
manage.py commands to run before the server starts (e.g. a command that seeds more data).

`measure()` sends a fixed number of GET requests over `concurrency` keep-alive connections
to 127.0.0.1 only and stops by itself (every response has a timeout, the run a deadline).
Any response that is not 200 aborts the run: a benchmark that measured redirects to the
sign-in page would be worse than none. `compare()` measures the page and its baseline in
alternating rounds in the same run and keeps each one's median, so both see the same
machine load (the benchmark machine is shared).
"""

import asyncio
import http.client
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from config.demo import DEMO_PASSWORD
from config.server import command as server_command

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
HELLO_PATH = "/bench/hello/"
RESPONSE_TIMEOUT = 30.0
RUN_DEADLINE = 300.0
SETUP_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Measurement:
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    requests: int


@dataclass
class Site:
    port: int
    environment: dict

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def sign_in(self, email: str, password: str | None = None) -> str:
        """Sign in through the real form; returns the Cookie header value for later requests."""
        connection = http.client.HTTPConnection(HOST, self.port, timeout=RESPONSE_TIMEOUT)
        connection.request("GET", "/accounts/sign-in/")
        response = connection.getresponse()
        page = response.read().decode()
        csrf_cookie = _cookie(response, "csrftoken")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "username": email, "password": password or DEMO_PASSWORD}
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf_cookie}"}
        connection.request("POST", "/accounts/sign-in/", body=form, headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        session = _cookie(response, "sessionid")
        if response.status != 302 or not session:
            raise RuntimeError(f"Signing in as {email} failed with HTTP {response.status}")
        return f"csrftoken={csrf_cookie}; sessionid={session}"

    def measure(
        self, path: str, *, cookie: str = "", requests: int = 1000, concurrency: int = 8
    ) -> Measurement:
        return asyncio.run(_load(self.port, path, cookie, requests, concurrency))


def _cookie(response: http.client.HTTPResponse, name: str) -> str:
    for header in response.headers.get_all("Set-Cookie") or []:
        if header.startswith(f"{name}="):
            return header.split(";", 1)[0].split("=", 1)[1]
    return ""


def compare(
    site: Site,
    *,
    name: str,
    path: str,
    baseline_name: str,
    baseline_path: str,
    target: str,
    cookie: str = "",
    baseline_cookie: str = "",
    requests: int = 1000,
    concurrency: int = 8,
    rounds: int = 3,
) -> dict:
    """One results.json row: requests/s of `path` against `baseline_path`, same server, same run.

    `cookie` is sent with `path` (a signed-in page needs one); the baseline is anonymous unless
    `baseline_cookie` is given, so by default it is the true floor of the server.
    """
    # Warm both paths first: the first requests pay for imports, template loading and connections.
    site.measure(path, cookie=cookie, requests=50, concurrency=concurrency)
    site.measure(baseline_path, cookie=baseline_cookie, requests=50, concurrency=concurrency)
    page, baseline = [], []
    for _ in range(rounds):
        baseline.append(
            site.measure(baseline_path, cookie=baseline_cookie, requests=requests, concurrency=concurrency)
        )
        page.append(site.measure(path, cookie=cookie, requests=requests, concurrency=concurrency))
    value = statistics.median(m.requests_per_second for m in page)
    baseline_value = statistics.median(m.requests_per_second for m in baseline)
    return {
        "name": name,
        "unit": "requests/s",
        "value": round(value, 1),
        "baseline_name": baseline_name,
        "baseline_value": round(baseline_value, 1),
        "ratio": round(value / baseline_value, 3),
        "target": target,
        # Not part of results.json (run.py keeps the documented keys); for the printed line and docs.
        "detail": {
            "p50_ms": statistics.median(m.p50_ms for m in page),
            "p95_ms": statistics.median(m.p95_ms for m in page),
            "baseline_p50_ms": statistics.median(m.p50_ms for m in baseline),
            "baseline_p95_ms": statistics.median(m.p95_ms for m in baseline),
            "requests": requests,
            "concurrency": concurrency,
            "rounds": rounds,
        },
    }


async def _load(port: int, path: str, cookie: str, total: int, concurrency: int) -> Measurement:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: keep-alive\r\n"
        + (f"Cookie: {cookie}\r\n" if cookie else "")
        + "\r\n"
    ).encode()
    remaining = total
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    async def connection() -> None:
        nonlocal remaining
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                writer.write(request)
                status, keep_alive = await asyncio.wait_for(_read_response(reader), RESPONSE_TIMEOUT)
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1
                if status != 200:
                    raise RuntimeError(f"GET {path} answered {status}; benchmarks measure 200s only")
                if not keep_alive:
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(connection() for _ in range(concurrency))), RUN_DEADLINE)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Measurement(
        requests_per_second=len(latencies) / elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p95_ms=latencies[int(len(latencies) * 0.95)] * 1000,
        requests=len(latencies),
    )


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *header_lines = head.split("\r\n")
    headers = {}
    for line in header_lines:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers.get("connection", "").lower() != "close"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def _database(environment: dict) -> Iterator[dict]:
    """A fresh database for one run: SQLite under `workdir`, or a new Postgres database."""
    source = environment.get("DATABASE_URL", "")
    if not source.startswith(("postgres://", "postgresql://")):
        environment.pop("DATABASE_URL", None)
        yield environment
        return
    import psycopg

    parts = urllib.parse.urlsplit(source)
    name = f"bench_{secrets.token_hex(4)}"
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {**environment, "DATABASE_URL": urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))}
    finally:
        # Bounded: DROP DATABASE waits for every backend on the server to acknowledge it, and one
        # stuck session elsewhere must not keep the measured figures from being written.
        try:
            with psycopg.connect(admin, autocommit=True, options="-c statement_timeout=30000") as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error as error:
            print(
                f"Could not drop the benchmark database {name} ({error}); drop it by hand.", file=sys.stderr
            )


@contextmanager
def served_product(*, setup: Iterable[tuple[str, ...]] = ()) -> Iterator[Site]:
    with tempfile.TemporaryDirectory(prefix="alongside-bench-") as folder:
        workdir = Path(folder)
        base = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "ALONGSIDE_ENV": "development",
            "ALONGSIDE_VAR_DIR": str(workdir),
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
        }
        # The pool is for the web process only, as in docker-compose.yml: one-off commands
        # (and anything that forks or copies in threads) get plain connections.
        pool_size = base.pop("DB_POOL_MAX_SIZE", "") or "10"
        with _database(base) as environment:
            manage = [sys.executable, str(ROOT / "manage.py")]
            for command in (("migrate", "--noinput"), ("seed_demo",), *setup):
                subprocess.run(
                    [*manage, *command],
                    cwd=ROOT,
                    env=environment,
                    check=True,
                    capture_output=True,
                    timeout=SETUP_TIMEOUT,
                )
            if environment.get("DATABASE_URL"):
                environment = {**environment, "DB_POOL_MAX_SIZE": pool_size}
            port = _free_port()
            log = (workdir / "server.log").open("w")
            server = subprocess.Popen(
                server_command(HOST, port),
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                _wait_until_answering(port, server, workdir / "server.log")
                yield Site(port=port, environment=environment)
            finally:
                server.terminate()
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
                log.close()


def _wait_until_answering(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}:\n{log.read_text()[-2000:]}")
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            connection.request("GET", HELLO_PATH)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer on port {port} within 60 s:\n{log.read_text()[-2000:]}")


DOC = ROOT / "docs" / "performance.md"


def write_doc_section(key: str, title: str, rows: list[dict], *, database: dict) -> None:
    """Replace this benchmark's section of docs/performance.md for this database with `rows`.

    So the figures in the docs are the ones the last run measured, never typed in by hand.
    """
    store = "PostgreSQL" if database.get("DATABASE_URL") else "SQLite (WAL)"
    layer = "Redis" if database.get("REDIS_URL") else "in-memory"
    # One section per database, so a SQLite run does not overwrite the Postgres figures.
    variant = "postgres" if database.get("DATABASE_URL") else "sqlite"
    start, end = f"<!-- {key}:{variant}:start -->", f"<!-- {key}:{variant}:end -->"
    detail = rows[0].get("detail", {})
    lines = [
        start,
        f"## {title} ({store.split()[0]})",
        "",
        f"`python -m bench.run {key.removeprefix('bench_')}`, last run {time.strftime('%Y-%m-%d')}: "
        f"one uvicorn process (config.server), {store} database, {layer} channel layer, DEBUG off, "
        f"on a {os.cpu_count()}-core machine shared with other work "
        "(the load generator runs on the same cores). "
        f"{detail.get('requests', '?')} requests per round over {detail.get('concurrency', '?')} keep-alive "
        f"connections, {detail.get('rounds', '?')} alternating rounds, median kept.",
        "",
        "| benchmark | requests/s | baseline | baseline requests/s | ratio | target | p50 | p95 |",
        "| --- | ---: | --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for row in rows:
        detail = row.get("detail", {})
        lines.append(
            f"| {row['name']} | {row['value']} | {row['baseline_name']} | {row['baseline_value']} | "
            f"{row['ratio']} | {row['target']} | "
            f"{detail.get('p50_ms', 0):.1f} ms | {detail.get('p95_ms', 0):.1f} ms |"
        )
    section = "\n".join([*lines, end])
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)
