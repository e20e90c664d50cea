"""Calendar feeds and .ics downloads, read back with the icalendar library."""

from datetime import UTC, date, datetime, time

import icalendar
import pytest
import time_machine
from django.urls import reverse

from circles import services
from circles.models import CircleSession
from tests.factories import make_circle

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def planned(people):
    with time_machine.travel(NOW, tick=False):
        circle = make_circle(people.facilitator, members=[people.member], start_date=date(2025, 3, 11))
        services.circle_materialise(circle_id=circle.pk)
    return circle


def events(body: bytes) -> dict[str, icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(body)
    assert calendar["VERSION"] == "2.0" and calendar["PRODID"]
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


def test_feed_lists_every_session_and_keeps_uids_across_changes(client, people, planned):
    feed = services.calendar_feed_regenerate(user=people.member)
    url = reverse("circles:calendar-feed", args=[feed.token])
    response = client.get(url)
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    before = events(response.content)
    assert len(before) == planned.sessions.count() == 12
    first, second = planned.sessions.order_by("starts_at")[:2]
    with time_machine.travel(NOW, tick=False):
        services.session_change(actor=people.facilitator, session=first, action="cancel", reason="Snow day")
        services.session_change(
            actor=people.facilitator,
            session=second,
            action="move",
            reason="Room clash",
            new_date=date(2025, 3, 19),
            new_time=time(15, 0),
        )
    after = events(client.get(url).content)
    assert set(after) == set(before)
    cancelled = after[f"session-{first.pk}@127.0.0.1"]
    assert cancelled["STATUS"] == "CANCELLED" and cancelled["SEQUENCE"] == 1
    assert "Snow day" in str(cancelled["DESCRIPTION"])
    moved = after[f"session-{second.pk}@127.0.0.1"]
    assert moved.decoded("DTSTART") == datetime(2025, 3, 19, 15, 0, tzinfo=UTC)
    assert moved["STATUS"] == "CONFIRMED" and moved["SEQUENCE"] == 1


def test_feed_holds_only_the_person_s_own_circles(client, people, planned):
    make_circle(people.facilitator, name="Not Alice's")
    services.circle_materialise(circle_id=planned.pk)
    body = client.get(
        reverse("circles:calendar-feed", args=[services.calendar_feed_regenerate(user=people.member).token])
    ).content
    assert {str(e["SUMMARY"]) for e in events(body).values()} == {planned.name}


def test_single_session_download_is_one_valid_event(client_for, people, planned):
    session = planned.sessions.first()
    response = client_for(people.member).get(reverse("circles:session-ics", args=[session.pk]))
    assert response["Content-Disposition"].startswith("attachment;")
    (event,) = events(response.content).values()
    assert event.decoded("DTSTART") == session.starts_at
    assert event.decoded("DTEND") == session.ends_at
    assert str(event["UID"]) == f"session-{session.pk}@127.0.0.1"


def test_revoked_feed_stops_working(client, people, planned):
    feed = services.calendar_feed_regenerate(user=people.member)
    services.calendar_feed_revoke(user=people.member)
    assert client.get(reverse("circles:calendar-feed", args=[feed.token])).status_code == 404


def test_skipped_session_is_cancelled_in_the_calendar(client, people, planned):
    session = planned.sessions.first()
    CircleSession.objects.filter(pk=session.pk).update(status=CircleSession.Status.SKIPPED, revision=3)
    feed = services.calendar_feed_regenerate(user=people.member)
    event = events(client.get(reverse("circles:calendar-feed", args=[feed.token])).content)[
        f"session-{session.pk}@127.0.0.1"
    ]
    assert event["STATUS"] == "CANCELLED" and event["SEQUENCE"] == 3
