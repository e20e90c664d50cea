"""Builders for insights tests: many people at once (no password hashing), circles, sessions."""

import itertools
from datetime import UTC, date, datetime, time, timedelta

from accounts.models import Organisation, Team, User
from circles.models import Attendance, Circle, CircleSession, Membership
from insights import services
from tests.factories import shipped_template

_numbers = itertools.count(1)
LONG_AGO = datetime(2024, 1, 1, tzinfo=UTC)
# Every insights test runs at this moment: the current month is June 2025, the default is May.
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


def add_people(organisation: Organisation, team: Team | None, count: int, name: str = "Person") -> list[User]:
    people = []
    for _ in range(count):
        n = next(_numbers)
        people.append(
            User(
                email=f"person{n}@example.org",
                display_name=f"{name} {n}",
                organisation=organisation,
                team=team,
                password="!",
            )
        )
    return User.objects.bulk_create(people)


def add_circle(organisation: Organisation, members, name: str = "Circle", purpose: str = "") -> Circle:
    circle = Circle.objects.create(
        organisation=organisation,
        name=name,
        purpose=purpose,
        template=shipped_template(),
        time_zone="Europe/London",
        start_date=date(2024, 1, 2),
        start_time=time(14, 0),
    )
    Membership.objects.bulk_create(
        Membership(circle=circle, user=user, joined_at=LONG_AGO) for user in members
    )
    return circle


def add_session(circle: Circle, starts_at: datetime, *, status: str = "ended", attended=()) -> CircleSession:
    session = CircleSession.objects.create(
        circle=circle,
        occurrence_date=starts_at.date(),
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=1),
        status=status,
    )
    Attendance.objects.bulk_create(
        Attendance(session=session, user=user, joined_at=starts_at, left_at=starts_at + timedelta(hours=1))
        for user in attended
    )
    return session


def refresh(organisation: Organisation) -> None:
    services.rollups_refresh_recent(now=NOW)
