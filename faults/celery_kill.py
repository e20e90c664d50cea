"""The Celery worker killed mid-batch: every due reminder delivered exactly once.

The rig of tests/circles/test_reminders_worker.py (a real prefork worker on the Redis broker, two
beats, an aiosmtpd sink counting Message-IDs) against a throwaway database, with more kills:
the worker is SIGKILLed at a random moment of its work and started again, `kills` times.
The work runs in a child process (`python -m faults.celery_kill N KILLS`), which needs Django.
"""

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from faults import rig
from faults.scenarios import check, result


def run(*, short: bool = False) -> dict:
    people, kills = (200, 2) if short else (1000, 6)
    with rig.throwaway_database() as database:
        out = subprocess.run(
            [sys.executable, "-m", "faults.celery_kill", str(people), str(kills)],
            cwd=rig.ROOT,
            env=rig.django_env(database, REDIS_URL=rig.redis_url()),
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    expected = {
        "emails delivered": ("emails_delivered", people),
        "emails delivered twice": ("emails_twice", 0),
        "emails never delivered": ("emails_missing", 0),
        "in-app notifications": ("notifications", people),
        "reminders not marked sent": ("not_sent", 0),
    }
    checks = [
        check(what, figures[key], f"= {want}", figures[key] == want) for what, (key, want) in expected.items()
    ]
    return result("celery_kill", {"reminders": 2 * people, "kills": kills}, figures, checks)


def _inner(people: int, kills: int) -> dict:
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from circles import reminders
    from circles.models import Notification, Reminder
    from tests.circles import reminder_rig as reminder

    redis = os.environ["REDIS_URL"]
    rows = reminder.make_due_reminders(
        people=people,
        kinds=[Reminder.Kind.HOUR_BEFORE],
        channels=[Reminder.Channel.EMAIL, Reminder.Channel.IN_APP],
        due_at=timezone.now() - timedelta(minutes=1),
    )
    expected = {reminders.message_id(r) for r in rows if r.channel == Reminder.Channel.EMAIL}
    reminder.purge_broker(redis)
    rng = random.Random()
    processes = []
    done = 0
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="faults-celery-") as folder, reminder.smtp_sink() as (sink, port):
        log = Path(folder) / "celery.log"
        env = reminder.process_env(
            database=reminder.database_url(connection.settings_dict),
            redis=redis,
            smtp_port=port,
            REMINDER_SWEEP_SECONDS="1",
            REMINDER_LEASE_SECONDS="3",
        )
        try:
            processes += [
                reminder.start_beat(env, log, pidfile=Path(folder) / f"beat{n}.pid") for n in (1, 2)
            ]
            worker = reminder.start_worker(env, log)
            processes.append(worker)
            step = max(20, 2 * people // (kills + 2))
            for _ in range(kills):
                progress = sink.total + Notification.objects.count()
                reminder.wait_for(
                    lambda p=progress: sink.total + Notification.objects.count() >= p + step,
                    timeout=120,
                    what=f"delivery to resume (see {log})",
                )
                time.sleep(rng.uniform(0, 0.25))
                reminder.kill(worker)
                done += 1
                worker = reminder.start_worker(env, log)
                processes.append(worker)
            reminder.wait_for(
                lambda: not Reminder.objects.exclude(status=Reminder.Status.SENT).exists(),
                timeout=300,
                what=f"every reminder to be marked sent (see {log})",
            )
        finally:
            for process in processes:
                reminder.kill(process, signal.SIGTERM)
        counts = dict(sink.counts)
    return {
        "kills_done": done,
        "seconds": round(time.monotonic() - began, 1),
        "emails_delivered": len(set(counts) & expected),
        "emails_twice": sum(1 for n in counts.values() if n > 1),
        "emails_missing": len(expected - set(counts)),
        "emails_unexpected": len(set(counts) - expected),
        "notifications": Notification.objects.filter(reminder_key__isnull=False).count(),
        "not_sent": Reminder.objects.exclude(status=Reminder.Status.SENT).count(),
    }


if __name__ == "__main__":
    print(json.dumps(_inner(int(sys.argv[1]), int(sys.argv[2]))))
