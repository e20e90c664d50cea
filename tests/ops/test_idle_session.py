"""The idle timeout: use keeps a session alive, idleness ends it, and use writes it at most once a minute."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.sessions import SessionStore

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def signed_in(client, people):
    with time_machine.travel(START, tick=False):
        client.force_login(people.member, backend="accounts.backends.UserBackend")
    return client


def expiry(client) -> datetime:
    return Session.objects.get(session_key=client.session.session_key).expire_date


def session_writes(client, at: datetime) -> int:
    with time_machine.travel(at, tick=False), CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("home")).status_code == 200
    return sum('UPDATE "django_session"' in q["sql"] or "INSERT INTO" in q["sql"] for q in queries)


def test_use_pushes_the_expiry_forward_at_most_once_a_minute(signed_in, settings):
    first = START + timedelta(seconds=5)
    assert session_writes(signed_in, first) == 1
    assert expiry(signed_in) == first + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert session_writes(signed_in, first + timedelta(seconds=30)) == 0
    assert expiry(signed_in) == first + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    later = first + timedelta(seconds=settings.SESSION_REFRESH_SECONDS)
    assert session_writes(signed_in, later) == 1
    assert expiry(signed_in) == later + timedelta(seconds=settings.SESSION_COOKIE_AGE)


def test_a_session_used_steadily_outlives_the_idle_timeout_and_an_idle_one_ends(signed_in, settings):
    idle = timedelta(seconds=settings.SESSION_COOKIE_AGE)
    at = START
    while at < START + 2 * idle:  # in use every 10 minutes for twice the timeout
        at += timedelta(minutes=10)
        with time_machine.travel(at, tick=False):
            assert signed_in.get(reverse("home")).status_code == 200
    with time_machine.travel(at + idle + timedelta(minutes=1), tick=False):
        response = signed_in.get(reverse("home"))
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


def test_anonymous_visitors_get_no_session_written(client, db):
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("accounts:login"))
    assert not any("django_session" in q["sql"] for q in queries)


def test_the_session_read_finds_a_live_session_and_not_an_expired_or_unknown_one(signed_in, settings):
    """accounts/sessions.py writes the read out; it must answer as Django's own store does."""
    key = signed_in.session.session_key
    expires = expiry(signed_in)
    with time_machine.travel(expires - timedelta(seconds=1), tick=False):
        ours, django = SessionStore(key), DjangoStore(key)
        assert ours.load() == django.load() and "_auth_user_id" in ours.load()
    with time_machine.travel(expires + timedelta(seconds=1), tick=False):
        ours, django = SessionStore(key), DjangoStore(key)
        assert ours.load() == django.load() == {}
        assert ours.session_key is None
    assert SessionStore("no-such-session-key-0123456789").load() == {}
    with time_machine.travel(expires + timedelta(seconds=1), tick=False):
        assert signed_in.get(reverse("home")).status_code == 302  # signed out by idleness
