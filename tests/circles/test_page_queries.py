"""The member home and the circle page cost the same number of queries with 1 or 50 rows."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import CrisisLink
from circles.models import CircleSession, CoverRequest
from tests.factories import make_circle, make_person

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def add_sessions(circle, count, facilitator):
    CircleSession.objects.bulk_create(
        CircleSession(
            circle=circle,
            occurrence_date=date(2025, 1, 1) + timedelta(days=i),
            starts_at=NOW + timedelta(days=i - count // 2, hours=1),
            ends_at=NOW + timedelta(days=i - count // 2, hours=2),
            facilitator=facilitator,
        )
        for i in range(count)
    )


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_home_query_count_does_not_grow_with_circles_and_sessions(
    client_for, people, django_assert_num_queries
):
    client = client_for(people.member)
    circle = make_circle(people.facilitator, members=[people.member])
    add_sessions(circle, 2, people.member)
    baseline = queries_for(client, reverse("home"))
    for n in range(49):
        more = make_circle(people.facilitator, name=f"Circle {n}", members=[people.member])
        add_sessions(more, 2, people.facilitator)
    with django_assert_num_queries(baseline):
        client.get(reverse("home"))


def test_circle_page_query_count_does_not_grow_with_sessions_members_or_covers(
    client_for, people, django_assert_num_queries
):
    client = client_for(people.member)
    circle = make_circle(people.facilitator, members=[people.member], capacity=12)
    circle.memberships.update(rota_opt_in=True)
    add_sessions(circle, 2, people.member)
    CrisisLink.objects.create(organisation=people.org, label="Support line", phone="020 7946 0018")
    url = reverse("circles:circle-detail", args=[circle.pk])
    baseline = queries_for(client, url)
    for n in range(10):
        membership = circle.memberships.create(user=make_person(people.org, f"Member {n}"), rota_opt_in=True)
        assert membership.pk
    CircleSession.objects.bulk_create(
        CircleSession(
            circle=circle,
            occurrence_date=date(2026, 1, 1) + timedelta(days=i),
            starts_at=NOW + timedelta(days=i + 5),
            ends_at=NOW + timedelta(days=i + 5, hours=1),
            facilitator=people.facilitator,
        )
        for i in range(48)
    )
    for session in circle.sessions.filter(starts_at__gt=NOW)[:5]:
        CoverRequest.objects.create(session=session, requested_by=people.facilitator)
    for n in range(5):
        CrisisLink.objects.create(organisation=people.org, label=f"Line {n}", phone="020 7946 0000")
    with django_assert_num_queries(baseline):
        page = client.get(url)
    assert page.context["page"].upcoming and len(page.context["page"].rota) == 12
