"""The short fault subset (`python -m faults.run --short`), run for real, and the checker it relies on.

The short subset kills the ASGI server 3 times under 6 clients, restarts a private Redis and a
private Postgres cluster mid-session; every client's applied events must match what Postgres
stored, and nothing may be acknowledged while Postgres is down. The Celery-worker fault is not
repeated here: tests/circles/test_reminders_worker.py is that fault, on the same rig. Timing
targets (resync p95, live again within 10 s) are printed by the run and recorded in
docs/reliability.md, not asserted.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faults.client import LiveClient, check_against_store

ROOT = Path(__file__).resolve().parents[2]
SHORT = ["asgi_kill", "redis_restart", "postgres_restart"]


@pytest.mark.services
def test_short_faults_lose_duplicate_and_reorder_nothing(tmp_path):
    database = os.environ.get("DATABASE_URL", "")
    assert database.startswith("postgres"), "this test needs Postgres: set DATABASE_URL"
    assert os.environ.get("REDIS_URL", "").startswith("redis://"), "this test needs Redis: set REDIS_URL"
    report = tmp_path / "faults.json"
    run = subprocess.run(
        [sys.executable, "-m", "faults.run", *SHORT, "--short", "--json", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert report.exists(), run.stdout + run.stderr
    outcomes = {outcome["fault"]: outcome for outcome in json.loads(report.read_text())}
    assert sorted(outcomes) == sorted(SHORT)
    missed = {
        fault: [c for c in outcome["checks"] if not c["met"] and not c["timing"]]
        for fault, outcome in outcomes.items()
    }
    assert missed == {fault: [] for fault in SHORT}, run.stdout
    # The faults really happened: sockets dropped and came back, commands met a dead database.
    assert outcomes["asgi_kill"]["figures"]["drops"] >= 3
    assert outcomes["asgi_kill"]["figures"]["resyncs"] == outcomes["asgi_kill"]["figures"]["drops"]
    assert outcomes["postgres_restart"]["figures"]["sent_during_outage"] > 0
    assert outcomes["redis_restart"]["figures"]["clients_never_live_again"] == 0


def event(seq: int, text: str = "") -> dict:
    payload = {"seq": seq, "kind": "message.posted", "actor": 1, "patch": {}, "at": "2026-01-01T00:00:00Z"}
    payload["message"] = {"seq": seq, "author": 1, "text": text, "at": payload["at"]}
    return payload


def stored(*seqs: int) -> list[dict]:
    return [{"seq": s, "kind": "message.posted", "actor": 1, "patch": {}, "text": f"t{s}"} for s in seqs]


def client_that_applied(*seqs: int, snapshot: int = 0) -> LiveClient:
    client = LiveClient("c0", [], 1, "cookie")
    client.snapshots = [snapshot]
    client.applied = [event(s, f"t{s}") for s in seqs]
    client.last_seq = max(seqs, default=snapshot)
    return client


def test_checker_passes_a_client_that_applied_every_stored_event_once_in_order():
    figures = check_against_store([client_that_applied(2, 3, 4, snapshot=1)], stored(1, 2, 3, 4))
    assert (figures["lost"], figures["duplicated"], figures["reordered"], figures["mismatched"]) == (
        0,
        0,
        0,
        0,
    )


def test_checker_counts_a_missing_event_as_lost():
    figures = check_against_store([client_that_applied(1, 2, 4)], stored(1, 2, 3, 4))
    assert figures["lost"] == 1
    assert figures["reordered"] == 1


def test_checker_counts_an_event_applied_twice():
    assert check_against_store([client_that_applied(1, 2, 2, 3)], stored(1, 2, 3))["duplicated"] == 1


def test_checker_counts_events_out_of_order():
    assert check_against_store([client_that_applied(1, 3, 2)], stored(1, 2, 3))["reordered"] >= 1


def test_checker_counts_an_event_that_differs_from_the_stored_one():
    client = client_that_applied(1, 2)
    client.applied[1]["message"]["text"] = "something else"
    assert check_against_store([client], stored(1, 2))["mismatched"] == 1


def test_checker_counts_an_acknowledged_command_missing_from_the_store():
    client = client_that_applied(1)
    client.acks = {
        "c0.1": {"seq": 1, "duplicate": False, "at": 0.0},
        "c0.2": {"seq": 2, "duplicate": False, "at": 0.0},
    }
    rows = [{"seq": 1, "kind": "message.posted", "actor": 1, "patch": {}, "text": "c0.1"}]
    client.applied = [event(1, "c0.1")]
    assert check_against_store([client], rows)["acked_but_missing"] == 1
