"""The processes a fault run needs, each started and killed by us: a throwaway database, the ASGI server,
a private redis-server and a private Postgres cluster.

The orchestrator never imports Django (a pytest process calling in already has its own settings):
Django work (migrate, seeding) runs in child processes pointed at the throwaway database, and the
server's stored events are read back with psycopg.
"""

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from config.server import command as server_command

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(condition, *, timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@contextmanager
def log_folder(prefix: str):
    """Where the servers of one fault write their logs: a temporary folder, or FAULTS_LOG_DIR
    (kept) when set, to look into a failed run."""
    kept = os.environ.get("FAULTS_LOG_DIR")
    if kept:
        folder = Path(kept) / f"{prefix}{secrets.token_hex(2)}"
        folder.mkdir(parents=True)
        yield str(folder)
        return
    with tempfile.TemporaryDirectory(prefix=f"alongside-{prefix}") as folder:
        yield folder


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS


def _with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url.replace("postgresql://", "postgres://", 1))
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def django_env(database: str, **extra: str) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ALONGSIDE_ENV": "development",
        "DATABASE_URL": database,
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.pop("DB_POOL_MAX_SIZE", None)
    env.update(extra)
    return env


def migrate(database: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=django_env(database),
        check=True,
        timeout=600,
    )


@dataclass
class Room:
    session: int
    circle: int
    cookies: list[str]
    users: list[int]


@dataclass
class Template:
    url: str
    room: Room


# The migrated and seeded database the faults of one run clone (set by `prepared()`): migrating
# takes 10-25 s on a loaded machine, a clone well under one.
_template: Template | None = None
TEMPLATE_PEOPLE = 12


def _create(admin: str, name: str, template: str | None = None) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def _drop(admin: str, name: str) -> None:
    try:
        with psycopg.connect(admin, autocommit=True, options="-c statement_timeout=30000") as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error as error:
        print(f"Could not drop the fault database {name} ({error}); drop it by hand.", file=sys.stderr)


def _database_name(url: str) -> str:
    return urllib.parse.urlsplit(url).path.lstrip("/") or "postgres"


def _admin_source() -> str:
    source = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE
    if not source.startswith(("postgres://", "postgresql://")):
        raise RuntimeError("fault runs need Postgres: set DATABASE_URL to a postgres:// URL")
    return source


@contextmanager
def migrated_database(label: str = "fault"):
    """A new database beside DATABASE_URL's (named after it), migrated; dropped afterwards."""
    source = _admin_source()
    name = f"{_database_name(source)}_{label}_{secrets.token_hex(3)}"
    admin = _with_database(source, "postgres")
    _create(admin, name)
    url = _with_database(source, name)
    try:
        migrate(url)
        yield url
    finally:
        _drop(admin, name)


@contextmanager
def prepared():
    """Migrate and seed one template database (a circle of TEMPLATE_PEOPLE with a session open
    now) for the faults run inside this block to clone; dropped at the end."""
    global _template
    with migrated_database("fault_template") as url:
        try:
            _template = Template(url, seed(url, circles=1, per_circle=TEMPLATE_PEOPLE)[0])
            yield _template
        finally:
            _template = None


def template_room() -> Room:
    if _template is None:
        raise RuntimeError("call faults inside rig.prepared()")
    return _template.room


@contextmanager
def throwaway_database(server_url: str | None = None):
    """A copy of the prepared template on the shared server (beside DATABASE_URL's database), or,
    given another server's URL, on that server (copied with pg_dump); dropped afterwards."""
    if _template is None:
        raise RuntimeError("call faults inside rig.prepared()")
    source = server_url or _admin_source()
    name = f"{_database_name(_admin_source())}_fault_{secrets.token_hex(3)}"
    admin = _with_database(source, "postgres")
    url = _with_database(source, name)
    if server_url is None:
        _create(admin, name, template=_database_name(_template.url))
    else:
        _create(admin, name)
        dump = subprocess.run(
            [_postgres_bin("pg_dump"), "--no-owner", "--dbname", _template.url],
            check=True,
            capture_output=True,
            timeout=300,
        )
        subprocess.run(
            [_postgres_bin("psql"), "--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", url],
            input=dump.stdout,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=300,
        )
    try:
        yield url
    finally:
        _drop(admin, name)


def seed(database: str, *, circles: int, per_circle: int) -> list[Room]:
    """`circles` circles of `per_circle` people, each with a session live now; signed-in cookies."""
    out = subprocess.run(
        [sys.executable, "-m", "faults.seed", str(circles), str(per_circle)],
        cwd=ROOT,
        env=django_env(database),
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return [Room(**room) for room in json.loads(out.stdout.strip().splitlines()[-1])]


def stored_events(database: str, session_id: int) -> list[dict]:
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT seq, kind, actor_id, patch, text FROM circles_sessionevent"
            " WHERE session_id = %s ORDER BY seq",
            [session_id],
        ).fetchall()
    return [{"seq": s, "kind": k, "actor": a, "patch": p, "text": t} for s, k, a, p, t in rows]


class AsgiServer:
    """One ASGI server as in production (config.server, a pool of 10 connections). `kill()` is a crash."""

    def __init__(self, database: str, redis: str, *, prefix: str, log: Path, port: int | None = None):
        self.port = port or free_port()
        self.log = log
        self.env = django_env(
            database,
            REDIS_URL=redis,
            CHANNEL_PREFIX=prefix,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            DB_POOL_MAX_SIZE="10",
        )
        self.process: subprocess.Popen | None = None

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    def ws_url(self, session_id: int) -> str:
        return f"ws://{HOST}:{self.port}/ws/circles/sessions/{session_id}/room/"

    def start(self, *, wait: bool = True) -> "AsgiServer":
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                server_command(HOST, self.port),
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            self.wait_listening()
        return self

    def wait_listening(self, timeout: float = 120) -> None:
        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}; see {self.log}")
            return answers(self.port)

        wait_for(up, timeout=timeout, what=f"the server on port {self.port}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss(self) -> int:
        return rss_bytes(self.process.pid)

    def kill(self) -> None:
        _signal_group(self.process, signal.SIGKILL)

    def stop(self) -> None:
        _signal_group(self.process, signal.SIGTERM)


def _signal_group(process: subprocess.Popen | None, sig: int) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class RedisServer:
    """A private redis-server on a spare port, configured as docker-compose.yml's (no persistence)."""

    def __init__(self, log: Path, port: int | None = None):
        self.port = port or free_port()
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("the Redis fault needs redis-server on PATH")
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [binary, "--bind", HOST, "--port", str(self.port), "--save", "", "--appendonly", "no"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: answers(self.port), timeout=30, what=f"redis-server on {self.port}")
        return self

    def kill(self) -> None:
        _signal_group(self.process, signal.SIGKILL)


def _postgres_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    if not candidates:
        raise RuntimeError(f"the Postgres fault needs {name} (a PostgreSQL server installation)")
    return str(candidates[-1])


class PostgresCluster:
    """A throwaway cluster in a temporary folder on a spare port, never the shared server.

    Postgres refuses to run as root, so as root the cluster belongs to the `postgres` user.
    `crash()` is `pg_ctl stop -m immediate`: no checkpoint, recovery from WAL on the next start.
    """

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="alongside-faults-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, _postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )

    def create(self) -> "PostgresCluster":
        subprocess.run(
            [*self.as_user, _postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )
        return self.start()

    def start(self) -> "PostgresCluster":
        options = f"-p {self.port} -k {self.folder} -c listen_addresses={HOST} -c max_connections=60"
        self._pg_ctl("-w", "-o", options, "start")
        return self

    def crash(self) -> None:
        self._pg_ctl("-w", "-m", "immediate", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._pg_ctl("-w", "-m", "immediate", "stop")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)
