"""A real delivery rig for reminders: an SMTP sink on loopback, Celery workers and beats as processes.

Used by the crash test (tests/circles/test_reminders_worker.py) and by bench/bench_reminders.py.
Every process is started in its own session, so a SIGKILL to its process group takes the
worker's pool children with it, like a container being killed.
"""

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


class SmtpSink:
    """Counts every message it is handed, by Message-ID, and every connection. Thread-safe; the
    server runs in a thread. Advertises PIPELINING (RFC 2920), as production MTAs do: aiosmtpd
    reads commands one line at a time from a buffered stream and answers them in order."""

    def __init__(self):
        self.counts: Counter[str] = Counter()
        self.total = 0
        self.connections = 0
        self.pipelining = True  # offer PIPELINING in the EHLO answer
        self.refusing = False  # answer DATA with a permanent failure and keep nothing
        self.refused_recipients: set[str] = set()  # answer RCPT for these with a permanent failure
        self.mails = 0  # MAIL commands seen, counted from 1 across connections
        self.refused_mails: set[int] = set()  # answer these MAIL commands with a temporary failure
        self.hang_ups: set[int] = set()  # close the connection instead of answering these MAIL commands
        self._lock = threading.Lock()

    def connected(self) -> None:
        with self._lock:
            self.connections += 1

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname  # this hook's contract: aiosmtpd leaves it to the handler
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")  # the last line ("250 HELP") ends the answer
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self._lock:
            self.mails += 1
            number = self.mails
        if number in self.hang_ups:
            server.transport.close()
            return "421 Closing the connection"  # written to a closed transport: never arrives
        if number in self.refused_mails:
            return "451 Try again later"
        envelope.mail_from, envelope.mail_options = address, list(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused_recipients:
            return "550 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.refusing:
            return "554 Transaction failed"
        # A regex rather than the email parser: at thousands of messages the parser was a fifth of
        # the sink's CPU, which a benchmark on two shared cores charges to the sender.
        head = envelope.content.split(b"\r\n\r\n", 1)[0]
        found = MESSAGE_ID.search(head)
        message_id = found[1].decode() if found else None
        with self._lock:
            self.counts[message_id] += 1
            self.total += 1
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class _CountingSMTP(SMTP):
    def connection_made(self, transport):
        self.event_handler.connected()
        super().connection_made(transport)


class _SinkController(Controller):
    def factory(self):
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


@contextmanager
def smtp_sink():
    # aiosmtpd logs every SMTP command at INFO: at thousands of messages that is the sink's main cost.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    sink = SmtpSink()
    controller = _SinkController(sink, hostname=HOST, port=free_port())
    controller.start()
    sink.connections = 0  # start() has connected once, to see that the server answers
    try:
        yield sink, controller.port
    finally:
        controller.stop()


def database_url(settings_dict: dict) -> str:
    user = quote(settings_dict.get("USER") or "postgres")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}" if password else user
    host = settings_dict.get("HOST") or HOST
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{settings_dict['NAME']}"


def process_env(*, database: str, redis: str, smtp_port: int, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database,
            "REDIS_URL": redis,
            "CELERY_BROKER_URL": redis,
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": HOST,
            "EMAIL_PORT": str(smtp_port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def _celery(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config.celery", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_worker(env: dict, log: Path, *, concurrency: int = 2) -> subprocess.Popen:
    return _celery(
        [
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ],
        env,
        log,
    )


def start_beat(env: dict, log: Path, *, pidfile: Path) -> subprocess.Popen:
    return _celery(["beat", "--loglevel", "WARNING", "--pidfile", str(pidfile)], env, log)


def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal the whole process group (the worker and its pool children), then reap the leader."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


def purge_broker(redis: str) -> None:
    """Forget queued and unacknowledged tasks left by an earlier run on this Redis database."""
    import redis as redis_client

    client = redis_client.Redis.from_url(redis)
    client.delete("celery", "unacked", "unacked_index")


def wait_for(condition, *, timeout: float, what: str, every: float = 0.05) -> None:
    """Poll `condition` until it holds; fail with `what` once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def make_due_reminders(*, people: int, kinds: list[str], channels: list[str], due_at: datetime) -> list:
    """`people` x `kinds` x `channels` due reminder rows about one session three hours away.

    Built with bulk inserts (no password hashing, no planning) so 10,000 rows take a moment.
    """
    from datetime import date, time, timedelta

    from accounts.models import Organisation, User
    from circles.models import Circle, CircleSession, Reminder
    from tests.factories import shipped_template

    organisation = Organisation.objects.create(name="Delivery rig")
    circle = Circle.objects.create(
        organisation=organisation,
        name="Rig circle",
        time_zone="Europe/London",
        start_date=date(2025, 1, 7),
        start_time=time(14, 0),
        template=shipped_template(),
    )
    starts_at = due_at + timedelta(hours=3)
    session = CircleSession.objects.create(
        circle=circle,
        occurrence_date=starts_at.date(),
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=1),
    )
    users = User.objects.bulk_create(
        [
            User(email=f"rig{n}@example.org", display_name=f"Rig person {n}", organisation=organisation)
            for n in range(people)
        ]
    )
    return Reminder.objects.bulk_create(
        [
            Reminder(
                user=user,
                session=session,
                kind=kind,
                channel=channel,
                due_at=due_at,
                session_starts_at=starts_at,
            )
            for user in users
            for kind in kinds
            for channel in channels
        ],
        batch_size=2000,
    )
