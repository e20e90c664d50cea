from datetime import UTC, date, datetime

import pytest
from django.db import transaction

from circles import live
from circles.models import CircleSession
from insights import services, tasks
from insights.models import TeamMonthRollup
from tests.insights.builders import add_circle, add_people, add_session, refresh


def may_row(team) -> TeamMonthRollup:
    return TeamMonthRollup.objects.get(team=team, month=date(2025, 5, 1))


@pytest.mark.django_db
def test_rollup_counts_member_sessions_once_per_person(world):
    row = may_row(world.team)
    assert (row.staff, row.people_scheduled, row.people_held) == (10, 10, 10)
    assert (row.sessions_scheduled, row.sessions_held, row.circles_active) == (9, 8, 2)
    assert (row.expected_member_sessions, row.attended_member_sessions, row.participants) == (40, 30, 8)


@pytest.mark.django_db
def test_refreshing_twice_changes_nothing(world):
    before = list(TeamMonthRollup.objects.order_by("pk").values_list(*services._FIELDS, "staff"))
    refresh(world.org)
    refresh(world.org)
    after = list(TeamMonthRollup.objects.order_by("pk").values_list(*services._FIELDS, "staff"))
    assert before == after


@pytest.mark.django_db
def test_a_session_ending_refreshes_its_month_only(world):
    session = add_session(world.circles[0], datetime(2025, 5, 28, 13, tzinfo=UTC), attended=world.crisis[:6])
    april = TeamMonthRollup.objects.get(team=world.team, month=date(2025, 4, 1))
    assert tasks.rollup_refresh_for_session(session.pk) == world.org.teams.count()
    row = may_row(world.team)
    assert (row.sessions_held, row.attended_member_sessions) == (9, 36)
    assert TeamMonthRollup.objects.get(pk=april.pk).refreshed_at == april.refreshed_at


@pytest.mark.django_db
def test_refresh_for_a_deleted_session_does_nothing(world):
    assert services.rollup_refresh_for_session(session_id=987654) == 0


@pytest.mark.django_db
def test_months_follow_the_organisation_time_zone(people, frozen):
    """23:30 UTC on 31 May is 00:30 on 1 June in London: a June session."""
    team = people.team
    staff = add_people(people.org, team, 6)
    circle = add_circle(people.org, staff)
    add_session(circle, datetime(2025, 5, 31, 23, 30, tzinfo=UTC), attended=staff)
    refresh(people.org)
    assert may_row(team).sessions_held == 0
    assert TeamMonthRollup.objects.get(team=team, month=date(2025, 6, 1)).sessions_held == 1


@pytest.mark.django_db
def test_people_who_joined_after_a_session_were_not_expected_at_it(people, frozen):
    staff = add_people(people.org, people.team, 6)
    circle = add_circle(people.org, staff)
    circle.memberships.filter(user=staff[0]).update(joined_at=datetime(2025, 5, 20, tzinfo=UTC))
    add_session(circle, datetime(2025, 5, 6, 13, tzinfo=UTC), attended=staff[1:])
    refresh(people.org)
    row = may_row(people.team)
    assert (row.expected_member_sessions, row.attended_member_sessions) == (5, 5)


@pytest.mark.django_db
def test_planner_cancelled_dates_were_never_scheduled(people, frozen):
    staff = add_people(people.org, people.team, 6)
    circle = add_circle(people.org, staff)
    add_session(circle, datetime(2025, 5, 6, 13, tzinfo=UTC), status="cancelled")
    dropped = add_session(circle, datetime(2025, 5, 13, 13, tzinfo=UTC), status="cancelled")
    CircleSession.objects.filter(pk=dropped.pk).update(unplanned=True)
    refresh(people.org)
    assert may_row(people.team).sessions_scheduled == 1


@pytest.mark.django_db
def test_nightly_task_refreshes_twelve_months_for_every_organisation(world):
    TeamMonthRollup.objects.all().delete()
    written = tasks.rollups_refresh_nightly()
    assert written == 12 * world.org.teams.count() + 12 * world.elsewhere.teams.count()
    assert may_row(world.team).participants == 8


@pytest.mark.django_db
def test_full_rebuild_covers_every_month_since_the_first_session(world):
    first = datetime(2024, 11, 5, 13, tzinfo=UTC)
    add_session(world.circles[0], first, attended=world.crisis[:6])
    TeamMonthRollup.objects.all().delete()
    services.rollups_rebuild(organisation=world.org)
    months = set(TeamMonthRollup.objects.filter(team=world.team).values_list("month", flat=True))
    assert min(months) == date(2024, 11, 1) and max(months) == date(2025, 6, 1) and len(months) == 8


@pytest.mark.django_db(transaction=True)
def test_a_session_ending_in_its_room_queues_a_refresh_after_commit(world, monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.rollup_refresh_for_session, "delay", queued.append)
    session = add_session(world.circles[0], datetime(2025, 6, 10, 13, tzinfo=UTC), status="live")
    with transaction.atomic():
        assert live.sessions_end_overdue(now=datetime(2025, 6, 10, 16, tzinfo=UTC)) == [session.pk]
        assert queued == []
    assert queued == [session.pk]
