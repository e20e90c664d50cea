"""iCalendar (RFC 5545) for circle sessions: a person's feed and single-session downloads.

Each session keeps one UID for life, so calendar apps update the event in place; SEQUENCE is
the session's revision, bumped by every change members should see. Times are written in UTC:
the session row already holds the instant worked out in the circle's zone, and UTC needs no
VTIMEZONE block that apps could disagree about.
"""

from collections.abc import Iterable
from urllib.parse import urlsplit

import icalendar
from django.conf import settings
from django.urls import reverse

from circles.models import CircleSession

PRODID = "-//Alongside//Peer reflection circles//EN"
CANCELLED = (CircleSession.Status.SKIPPED, CircleSession.Status.CANCELLED)


def session_uid(session: CircleSession) -> str:
    return f"session-{session.pk}@{urlsplit(settings.SITE_URL).hostname or 'alongside'}"


def _event(session: CircleSession) -> icalendar.Event:
    circle = session.circle
    link = settings.SITE_URL + reverse("circles:session-detail", args=[session.pk])
    lines = []
    if session.change_reason:
        lines.append(session.change_reason)
    if circle.purpose:
        lines.append(circle.purpose)
    lines.append(f"Session page: {link}")
    event = icalendar.Event()
    event.add("uid", session_uid(session))
    event.add("dtstamp", session.updated_at)
    event.add("dtstart", session.starts_at)
    event.add("dtend", session.ends_at)
    event.add("summary", circle.name)
    event.add("description", "\n\n".join(lines))
    event.add("url", link)
    event.add("sequence", session.revision)
    event.add("status", "CANCELLED" if session.status in CANCELLED else "CONFIRMED")
    if circle.video_url:
        event.add("location", circle.video_url)
    return event


def calendar_for(sessions: Iterable[CircleSession], *, name: str) -> bytes:
    """The sessions (with `circle` loaded) as one VCALENDAR."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    for session in sessions:
        cal.add_component(_event(session))
    return cal.to_ical()
