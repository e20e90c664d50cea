"""Reminders: 10,000 emails through the sweeper to an SMTP sink, against 10,000 no-op Celery tasks.

Both go through the same real Celery worker (prefork, 2 processes, DEBUG off as in production)
and Redis broker in the same run, each timed from the first publish to the last message handled,
polled every 5 ms:
- baseline: 10,000 `celery.accumulate` tasks (Celery's built-in task that returns its arguments),
  done when the queue and the unacknowledged set are empty: with the project's acks_late, a task
  leaves the unacknowledged set only after it ran, so this is the worker's real per-task floor;
- reminders: 10,000 due email reminders (rows written beforehand), sent by `reminders_sweep`
  tasks, one per worker process, done when the aiosmtpd sink on loopback has 10,000 messages.
Each email is rendered (text, HTML, .ics) and handed to the sink over the sweep's one SMTP
connection, one transaction per email (see circles/reminders.py). The sink advertises ESMTP
PIPELINING, as production MTAs (Postfix, Exim, SES) do, so the sweeper sends each email's dot
with the next email's envelope. The sink runs in this process, on the same cores. Target:
reminders take at most 1.5x the no-op tasks' time.
BENCH_REMINDERS_COUNT runs a smaller count while iterating; only the default, 10,000, is written
to the docs.

Needs Postgres and Redis (DATABASE_URL, REDIS_URL). The work runs in a child process against a
fresh database, dropped afterwards. Rewrites the "Reminders" section of docs/performance.md.
"""

import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
START, END = "<!-- bench_reminders:start -->", "<!-- bench_reminders:end -->"
DOCUMENTED_COUNT = 10_000
COUNT = int(os.environ.get("BENCH_REMINDERS_COUNT", DOCUMENTED_COUNT))
TARGET = "ratio <= 1.5"
# Alternating rounds, median of each side kept (as bench/harness.py's compare() does): the machine
# is shared, and load that comes and goes between two long phases skews one ratio.
ROUNDS = 3


def _inner() -> dict:
    """Runs in the child, with DATABASE_URL pointing at a fresh database."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    import redis as redis_client
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from circles.models import Reminder
    from config.celery import app
    from tests.circles import reminder_rig as rig

    if COUNT <= 0 or COUNT % len(Reminder.Kind.values):
        raise ValueError(f"BENCH_REMINDERS_COUNT must be a positive multiple of {len(Reminder.Kind.values)}")
    call_command("migrate", verbosity=0)
    redis = os.environ["REDIS_URL"]
    broker = redis_client.Redis.from_url(redis)
    # Every round's rows are written now, due tomorrow; each email round makes its own due first.
    rows = rig.make_due_reminders(
        people=ROUNDS * COUNT // 4,
        kinds=list(Reminder.Kind.values),
        channels=[Reminder.Channel.EMAIL],
        due_at=timezone.now() + timedelta(days=1),
    )
    ids = sorted(row.pk for row in rows)
    connection.close()
    rig.purge_broker(redis)

    def drained() -> bool:
        return broker.llen("celery") == 0 and broker.hlen("unacked") == 0

    def noop_round() -> float:
        started = time.perf_counter()
        for n in range(COUNT):
            app.send_task("celery.accumulate", args=(n,))
        rig.wait_for(drained, timeout=600, what=f"{COUNT:,} no-op tasks", every=0.005)
        return time.perf_counter() - started

    def email_round(number: int, sink) -> float:
        Reminder.objects.filter(pk__in=ids[number * COUNT : (number + 1) * COUNT]).update(
            due_at=timezone.now()
        )
        connection.close()
        goal = sink.total + COUNT
        started = time.perf_counter()
        while sink.total < goal:
            if drained():
                # A sweep stops after its time budget: start more until everything is out.
                for _ in range(2):
                    app.send_task("circles.tasks.reminders_sweep")
            time.sleep(0.005)
        return time.perf_counter() - started

    with tempfile.TemporaryDirectory() as folder, rig.smtp_sink() as (sink, port):
        # DEBUG off, as in production: with it on, Django keeps every query of the sweep in memory.
        env = rig.process_env(database=os.environ["DATABASE_URL"], redis=redis, smtp_port=port, DEBUG="false")
        worker = rig.start_worker(env, Path(folder) / "worker.log", concurrency=2)
        noop_seconds, email_seconds = [], []
        try:
            app.send_task("celery.accumulate", args=(0,))
            rig.wait_for(drained, timeout=120, what="the worker to start", every=0.01)
            load_before = os.getloadavg()[0]
            for number in range(ROUNDS):
                noop_seconds.append(noop_round())
                email_seconds.append(email_round(number, sink))
            load_after = os.getloadavg()[0]
        finally:
            rig.kill(worker)
        duplicates = sum(n - 1 for n in sink.counts.values())
    return {
        "noop_seconds": noop_seconds,
        "email_seconds": email_seconds,
        "duplicates": duplicates,
        "emails": sink.total,
        "load_before": load_before,
        "load_after": load_after,
    }


def _fresh_database(source: str) -> tuple[str, str, str]:
    parts = urllib.parse.urlsplit(source)
    name = f"bench_reminders_{secrets.token_hex(4)}"
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    return admin, name, urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def _write_doc(row: dict, detail: dict, *, rounds: tuple[list[float], list[float]]) -> None:
    emails, noops = (", ".join(f"{seconds:.2f}" for seconds in side) for side in rounds)
    section = "\n".join(
        [
            START,
            "## Reminders",
            "",
            f"`python -m bench.run reminders`, last run {time.strftime('%Y-%m-%d')}: one Celery worker "
            f"(prefork, 2 processes), Redis broker, PostgreSQL, an aiosmtpd sink on loopback that "
            "advertises PIPELINING as production MTAs do, on a "
            f"{os.cpu_count()}-core machine shared with other work. Both sides timed from the first "
            f"publish to the last message handled, in {ROUNDS} alternating rounds of the same run, "
            "median of each side kept.",
            "",
            "| benchmark | seconds | baseline | baseline seconds | ratio | target |",
            "| --- | ---: | --- | ---: | ---: | --- |",
            f"| {row['name']} | {row['value']} | {row['baseline_name']} | {row['baseline_value']} | "
            f"{row['ratio']} | {row['target']} |",
            "",
            f"Throughput: {detail['emails_per_second']:.0f} emails/s against "
            f"{detail['tasks_per_second']:.0f} no-op tasks/s; {detail['duplicates']} duplicate messages "
            f"at the sink; 1-minute load average {detail['load_before']:.1f} before the run and "
            f"{detail['load_after']:.1f} after it. Rounds: emails {emails} s; no-op tasks {noops} s. "
            + (
                "Target met."
                if row["ratio"] <= 1.5
                else "Target missed: each email still costs a rendering, a transaction of its own (three "
                "Postgres round trips, one a WAL flush) and an SMTP round trip to a sink on the same "
                "cores, which a no-op task does not."
            ),
            END,
        ]
    )
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)


def run() -> list[dict]:
    source = os.environ.get("DATABASE_URL", "")
    redis = os.environ.get("REDIS_URL", "")
    if not source.startswith(("postgres://", "postgresql://")) or not redis:
        raise RuntimeError("bench_reminders needs DATABASE_URL (Postgres) and REDIS_URL (Redis)")
    import psycopg

    admin, name, url = _fresh_database(source)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        child = subprocess.run(
            [sys.executable, "-m", "bench.bench_reminders", "--inner"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings"},
            capture_output=True,
            text=True,
            timeout=1500,
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if child.returncode != 0:
        raise RuntimeError(f"bench_reminders failed:\n{child.stdout[-3000:]}\n{child.stderr[-3000:]}")
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    email_seconds, noop_seconds = (
        statistics.median(figures[key]) for key in ("email_seconds", "noop_seconds")
    )
    detail = {
        "emails_per_second": COUNT / email_seconds,
        "tasks_per_second": COUNT / noop_seconds,
        "duplicates": figures["duplicates"],
        "load_before": figures["load_before"],
        "load_after": figures["load_after"],
    }
    row = {
        "name": f"{COUNT:,} reminder emails via the sweeper",
        "unit": "s",
        "value": round(email_seconds, 2),
        "baseline_name": f"{COUNT:,} no-op Celery tasks",
        "baseline_value": round(noop_seconds, 2),
        "ratio": round(email_seconds / noop_seconds, 2),
        "target": TARGET,
        "detail": detail,
    }
    if COUNT == DOCUMENTED_COUNT:
        _write_doc(row, detail, rounds=(figures["email_seconds"], figures["noop_seconds"]))
    return [row]


if __name__ == "__main__":
    if sys.argv[1:] == ["--inner"]:
        print(json.dumps(_inner()))
    else:
        for result in run():
            print(result)
