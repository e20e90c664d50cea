"""The promise, tested for real: a Celery worker against Redis, two beats, a real SMTP server.

1,000 reminders are due; the worker is killed with SIGKILL several times mid-delivery and
restarted while two beat processes keep sending sweeps. Every reminder must arrive, and none
twice: counted at the SMTP sink by Message-ID, and in the notifications table.
"""

import os
import random
import signal
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from circles import reminders
from circles.models import Notification, Reminder
from tests.circles import reminder_rig as rig

pytestmark = pytest.mark.services

KILLS = 3


@pytest.mark.django_db(transaction=True)
def test_a_thousand_reminders_survive_killed_workers_and_two_beats_each_delivered_once(tmp_path):
    redis = os.environ.get("REDIS_URL", "")
    assert redis.startswith("redis://"), "this test needs Redis: set REDIS_URL (CI always has it)"
    assert connection.vendor == "postgresql", "this test needs Postgres: set DATABASE_URL"
    rows = rig.make_due_reminders(
        people=500,
        kinds=[Reminder.Kind.HOUR_BEFORE],
        channels=[Reminder.Channel.EMAIL, Reminder.Channel.IN_APP],
        due_at=timezone.now() - timedelta(minutes=1),
    )
    assert len(rows) == 1000
    expected = {reminders.message_id(r) for r in rows if r.channel == Reminder.Channel.EMAIL}
    rig.purge_broker(redis)
    log = tmp_path / "celery.log"
    rng = random.Random()
    processes = []
    with rig.smtp_sink() as (sink, port):
        env = rig.process_env(
            database=rig.database_url(connection.settings_dict),
            redis=redis,
            smtp_port=port,
            # A beat every second and a short lease, so the test sees many sweeps and many retries.
            REMINDER_SWEEP_SECONDS="1",
            REMINDER_LEASE_SECONDS="3",
        )
        try:
            beats = [rig.start_beat(env, log, pidfile=tmp_path / f"beat{n}.pid") for n in (1, 2)]
            processes += beats
            worker = rig.start_worker(env, log)
            processes.append(worker)
            for kill in range(KILLS):
                # Let the worker get going, then kill it at a random moment of its work.
                progress = sink.total + Notification.objects.count()
                rig.wait_for(
                    lambda p=progress: sink.total + Notification.objects.count() >= p + 60,
                    timeout=60,
                    what=f"delivery to resume before kill {kill + 1} (see {log})",
                )
                # A random pause, so the kill does not land in step with what the sink just saw.
                time.sleep(rng.uniform(0, 0.25))
                rig.kill(worker)
                worker = rig.start_worker(env, log)
                processes.append(worker)
            rig.wait_for(
                lambda: Reminder.objects.filter(status=Reminder.Status.SENT).count() == 1000,
                timeout=90,
                what=f"all 1,000 reminders to be marked sent (see {log})",
            )
        finally:
            for process in processes:
                rig.kill(process, signal.SIGTERM)
        assert sum(p.returncode is not None for p in processes) == len(processes)
        duplicates = {mid: n for mid, n in sink.counts.items() if n > 1}
        assert duplicates == {}
        assert set(sink.counts) == expected
        assert sink.total == 500
    notified = Notification.objects.filter(reminder_key__isnull=False)
    assert notified.count() == 500
    assert notified.values("user").distinct().count() == 500
    assert not Reminder.objects.exclude(status=Reminder.Status.SENT).exists()
