"""The facilitation rota: shared fairly, never on someone's away dates or first session; cover."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError

from circles import services
from circles.models import AwayPeriod, CircleSession, CoverRequest, Membership
from tests.factories import make_circle, make_person

Status = CircleSession.Status
START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)  # a Monday; the circle meets on Tuesdays


def opted_in_circle(people, count=4):
    members = [make_person(people.org, f"Rota member {i}") for i in range(count)]
    circle = make_circle(people.facilitator, members=members, start_date=date(2025, 1, 7))
    circle.memberships.update(rota_opt_in=True, joined_at=START - timedelta(days=1))
    return circle, members


def run_weekly(circle, weeks, *, on_week=None):
    for week in range(weeks):
        with time_machine.travel(START + timedelta(weeks=week), tick=False):
            if on_week:
                on_week(week)
            services.circle_materialise(circle_id=circle.pk)


def test_turns_are_shared_within_one_over_52_sessions_respecting_away_dates_and_first_sessions(people):
    circle, members = opted_in_circle(people)
    away_person = members[1]
    AwayPeriod.objects.create(user=away_person, starts_on=date(2025, 3, 1), ends_on=date(2025, 3, 31))
    late = make_person(people.org, "Late joiner")

    def on_week(week):
        if week == 20:
            membership = services.membership_add(actor=people.facilitator, circle=circle, person=late)
            services.rota_opt_set(membership=membership, opt_in=True)
        if week == 30:
            # Marked after the turns were planned: their planned turns pass to others.
            services.away_add(user=members[2], starts_on=date(2025, 9, 1), ends_on=date(2025, 9, 14))

    run_weekly(circle, 64, on_week=on_week)
    sessions = list(circle.sessions.order_by("starts_at")[:52])
    assert len(sessions) == 52
    london_day = {s.pk: s.occurrence_date for s in sessions}

    # Away dates respected.
    for s in sessions:
        if s.facilitator_id == away_person.pk:
            assert not date(2025, 3, 1) <= london_day[s.pk] <= date(2025, 3, 31)
        if s.facilitator_id == members[2].pk:
            assert not date(2025, 9, 1) <= london_day[s.pk] <= date(2025, 9, 14)
    # Nobody facilitates their first session: the opening one has no rota facilitator, and the
    # late joiner's first session went to someone else.
    assert sessions[0].facilitator_id is None
    late_joined = circle.memberships.get(user=late).joined_at
    late_first = next(s for s in sessions if s.starts_at >= late_joined)
    assert late_first.facilitator_id not in (None, late.pk)

    counts = Counter(s.facilitator_id for s in sessions)
    opted_in = [people.facilitator, *members, late]
    assert sum(counts[p.pk] for p in opted_in) == 51
    final = [counts[p.pk] for p in opted_in]
    assert max(final) - min(final) <= 1, final


def test_turns_go_to_whoever_had_fewest_then_least_recently(people):
    circle, members = opted_in_circle(people, count=2)
    run_weekly(circle, 1)
    order = list(circle.sessions.order_by("starts_at").values_list("facilitator_id", flat=True)[:7])
    rotation = [people.facilitator.pk, members[0].pk, members[1].pk]
    assert order[0] is None
    assert order[1:] == sorted(rotation) + sorted(rotation)


def test_opting_out_hands_coming_turns_to_others(people):
    circle, members = opted_in_circle(people, count=2)
    run_weekly(circle, 1)
    with time_machine.travel(START, tick=False):
        membership = circle.memberships.get(user=members[0])
        services.rota_opt_set(membership=membership, opt_in=False)
    assert not circle.sessions.filter(facilitator=members[0]).exists()
    assert circle.sessions.filter(facilitator__isnull=True).count() == 1


def test_leaving_hands_coming_turns_to_others_and_the_last_facilitator_cannot_leave(people):
    circle, members = opted_in_circle(people, count=2)
    run_weekly(circle, 1)
    with time_machine.travel(START, tick=False):
        services.membership_end(actor=members[0], membership=circle.memberships.get(user=members[0]))
        with pytest.raises(ValidationError, match="only facilitator"):
            services.membership_end(
                actor=people.facilitator, membership=circle.memberships.get(user=people.facilitator)
            )
    assert not circle.sessions.filter(facilitator=members[0]).exists()


def test_cover_request_is_accepted_by_one_other_opted_in_member(people):
    circle, members = opted_in_circle(people, count=3)
    run_weekly(circle, 1)
    with time_machine.travel(START, tick=False):
        session = circle.sessions.filter(facilitator=members[0]).first()
        cover = services.cover_request(user=members[0], session=session, note="Clinic overran")
        assert services.cover_request(user=members[0], session=session) == cover  # twice is once
        with pytest.raises(ValidationError, match="asked for this cover yourself"):
            services.cover_accept(user=members[0], cover=cover)
        accepted = services.cover_accept(user=members[1], cover=cover)
        with pytest.raises(ValidationError, match="already said"):
            services.cover_accept(user=members[2], cover=cover)
    assert accepted.facilitator == members[1]
    assert accepted.revision == session.revision + 1
    assert CoverRequest.objects.get().accepted_by == members[1]


def test_only_the_session_facilitator_can_ask_for_cover_and_only_opted_in_members_accept(people):
    circle, members = opted_in_circle(people, count=2)
    outsider_to_rota = make_person(people.org, "Not on rota")
    Membership.objects.create(circle=circle, user=outsider_to_rota, joined_at=START - timedelta(days=1))
    run_weekly(circle, 1)
    with time_machine.travel(START, tick=False):
        session = circle.sessions.filter(facilitator=members[0]).first()
        with pytest.raises(ValidationError, match="Only the person facilitating"):
            services.cover_request(user=members[1], session=session)
        cover = services.cover_request(user=members[0], session=session)
        with pytest.raises(ValidationError, match="Opt in"):
            services.cover_accept(user=outsider_to_rota, cover=cover)
