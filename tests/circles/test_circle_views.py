"""Every circles view against every persona, plus the behaviour behind each page."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from accounts.models import CrisisLink
from circles import services
from circles.models import (
    AwayPeriod,
    CalendarFeed,
    Circle,
    CircleSession,
    CoverRequest,
    Membership,
    SessionTemplate,
)
from tests.factories import make_circle, make_org, make_person

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
Status = CircleSession.Status


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def world(people):
    """A circle run by the facilitator with the member in it, planned, plus the objects every view needs."""
    circle = make_circle(people.facilitator, members=[people.member], start_date=date(2025, 3, 11))
    circle.memberships.update(rota_opt_in=True, joined_at=NOW - timedelta(days=30))
    CircleSession.objects.create(
        circle=circle,
        occurrence_date=date(2025, 3, 4),
        starts_at=datetime(2025, 3, 4, 14, tzinfo=UTC),
        ends_at=datetime(2025, 3, 4, 15, tzinfo=UTC),
        facilitator=people.member,
    )
    services.circle_materialise(circle_id=circle.pk)
    session = circle.sessions.filter(starts_at__gt=NOW).exclude(facilitator=None).first()
    cover = CoverRequest.objects.create(session=session, requested_by=session.facilitator)
    own = SessionTemplate.objects.create(
        organisation=people.org, name="Our shape", created_by=people.facilitator
    )
    services.template_update(
        actor=people.facilitator,
        template=own,
        name="Our shape",
        rounds=[services.RoundSpec(kind="check_in", title="Hello")],
    )
    away = AwayPeriod.objects.create(user=people.member, starts_on=date(2025, 5, 1), ends_on=date(2025, 5, 2))
    return circle, session, cover, own, away


def view_cases():
    """(url name, args from world, method, POST data, who may use it: 'member' or 'facilitator')."""
    return [
        ("circles:circle-list", lambda w: [], "get", None, "anyone"),
        ("circles:circle-create", lambda w: [], "get", None, "facilitator-capability"),
        ("circles:circle-detail", lambda w: [w[0].pk], "get", None, "member"),
        ("circles:circle-edit", lambda w: [w[0].pk], "get", None, "facilitator"),
        ("circles:circle-archive", lambda w: [w[0].pk], "post", {}, "facilitator"),
        ("circles:member-add", lambda w: [w[0].pk], "get", None, "facilitator"),
        (
            "circles:member-remove",
            lambda w: [w[0].pk, w[0].memberships.get(role="member").pk],
            "post",
            {},
            "facilitator",
        ),
        ("circles:circle-leave", lambda w: [w[0].pk], "post", {}, "member"),
        ("circles:rota-opt", lambda w: [w[0].pk], "post", {"rota_opt_in": "on"}, "member"),
        ("circles:session-detail", lambda w: [w[1].pk], "get", None, "member"),
        ("circles:session-change", lambda w: [w[1].pk], "get", None, "facilitator"),
        ("circles:cover-request", lambda w: [w[1].pk], "post", {}, "member"),
        ("circles:session-ics", lambda w: [w[1].pk], "get", None, "member"),
        ("circles:cover-accept", lambda w: [w[2].pk], "post", {}, "member"),
        ("circles:template-list", lambda w: [], "get", None, "facilitator-capability"),
        ("circles:template-create", lambda w: [], "get", None, "facilitator-capability"),
        ("circles:template-detail", lambda w: [w[3].pk], "get", None, "facilitator-capability"),
        ("circles:template-edit", lambda w: [w[3].pk], "get", None, "facilitator-capability"),
        ("circles:template-copy", lambda w: [w[3].pk], "post", {}, "facilitator-capability"),
        ("circles:past-sessions", lambda w: [], "get", None, "anyone"),
        ("circles:away", lambda w: [], "get", None, "anyone"),
        ("circles:away-delete", lambda w: [w[4].pk], "post", {}, "owner"),
        ("circles:calendar", lambda w: [], "get", None, "anyone"),
        ("home", lambda w: [], "get", None, "anyone"),
    ]


CASES = view_cases()
IDS = [case[0] for case in CASES]
LIST_PAGES = {
    "home",
    "circles:circle-list",
    "circles:circle-create",
    "circles:past-sessions",
    "circles:away",
    "circles:calendar",
    "circles:template-list",
    "circles:template-create",
}
OBJECT_CASES = [case for case in CASES if case[0] not in LIST_PAGES]


@pytest.mark.parametrize(("name", "args", "method", "data", "who"), CASES, ids=IDS)
def test_anonymous_visitor_is_sent_to_sign_in(client, world, name, args, method, data, who):
    url = reverse(name, args=args(world))
    response = getattr(client, method)(url, data) if data is not None else getattr(client, method)(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


@pytest.mark.parametrize(("name", "args", "method", "data", "who"), CASES, ids=IDS)
def test_the_right_person_gets_the_page(client_for, people, world, name, args, method, data, who):
    user = people.member if who in ("member", "owner", "anyone") else people.facilitator
    url = reverse(name, args=args(world))
    client = client_for(user)
    response = client.post(url, data) if method == "post" else client.get(url)
    assert response.status_code in (200, 302), response.content[:500]
    if method == "post":
        assert response.status_code == 302


@pytest.mark.parametrize(
    ("name", "args", "method", "data", "who"), OBJECT_CASES, ids=[c[0] for c in OBJECT_CASES]
)
def test_other_organisation_gets_404(client_for, people, world, name, args, method, data, who):
    client = client_for(people.outsider)
    url = reverse(name, args=args(world))
    response = client.post(url, data) if method == "post" else client.get(url)
    assert response.status_code == 404


@pytest.mark.parametrize(("name", "args", "method", "data", "who"), CASES, ids=IDS)
def test_colleague_outside_the_circle_gets_404_and_missing_capability_gets_403(
    client_for, people, world, name, args, method, data, who
):
    client = client_for(people.admin)  # same organisation, not in the circle, not a facilitator
    url = reverse(name, args=args(world))
    response = client.post(url, data) if method == "post" else client.get(url)
    expected = {
        "member": 404,
        "facilitator": 404,
        "owner": 404,
        "facilitator-capability": 403,
        "anyone": 200,
    }[who]
    assert response.status_code == expected


@pytest.mark.parametrize(
    ("name", "args", "method", "data", "who"),
    [c for c in CASES if c[4] == "facilitator"],
    ids=lambda c: str(c),
)
def test_member_without_the_facilitator_role_gets_403(
    client_for, people, world, name, args, method, data, who
):
    client = client_for(people.member)
    url = reverse(name, args=args(world))
    response = client.post(url, data) if method == "post" else client.get(url)
    assert response.status_code == 403


@pytest.mark.parametrize(("name", "args", "method", "data", "who"), CASES, ids=IDS)
def test_wrong_method_gets_405(client_for, people, world, name, args, method, data, who):
    client = client_for(people.facilitator if "facilitator" in who else people.member)
    url = reverse(name, args=args(world))
    response = client.get(url) if method == "post" else client.delete(url)
    assert response.status_code == 405


def test_calendar_feed_wrong_method_and_unknown_token(client, people):
    feed = services.calendar_feed_regenerate(user=people.member)
    assert client.post(reverse("circles:calendar-feed", args=[feed.token])).status_code == 405
    assert client.get(reverse("circles:calendar-feed", args=["not-a-token"])).status_code == 404


# --- Behaviour -------------------------------------------------------------------------------


def circle_post(**overrides):
    data = {
        "name": "Thursday lunch circle",
        "purpose": "Space to think together.",
        "agreements": "Nobody has to share.",
        "capacity": "8",
        "time_zone": "Europe/London",
        "frequency": "weekly",
        "interval_weeks": "2",
        "week_of_month": "",
        "start_date": "2025-03-13",
        "end_date": "",
        "occurrence_count": "",
        "start_time": "12:30",
        "duration_minutes": "60",
        "template": str(SessionTemplate.objects.get(organisation=None).pk),
        "video_url": "",
    }
    data.update(overrides)
    return data


def test_facilitator_creates_a_circle_and_its_sessions_are_planned(
    client_for, people, django_capture_on_commit_callbacks
):
    client = client_for(people.facilitator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("circles:circle-create"), circle_post())
    circle = Circle.objects.get(name="Thursday lunch circle")
    assert response.url == reverse("circles:circle-detail", args=[circle.pk])
    assert circle.memberships.get().user == people.facilitator
    assert circle.sessions.count() == 12
    page = client.get(response.url)
    assert b"Thursday lunch circle" in page.content and b"Space to think together." in page.content


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"capacity": "13"}, "less than or equal to 12"),
        ({"end_date": "2025-03-01"}, "before the first"),
        ({"frequency": "monthly_nth_weekday"}, "which week of the month"),
        ({"start_date": "2025-03-30", "start_time": "01:30"}, "does not exist"),
        ({"start_date": "2025-10-26", "start_time": "01:30"}, "happens twice"),
        ({"time_zone": "Mars/Olympus"}, "not a time zone"),
    ],
)
def test_bad_circle_input_gets_a_clear_message_and_keeps_what_was_typed(client_for, people, overrides, words):
    response = client_for(people.facilitator).post(reverse("circles:circle-create"), circle_post(**overrides))
    assert response.status_code == 200
    assert words in response.content.decode()
    assert "Thursday lunch circle" in response.content.decode()
    assert not Circle.objects.exists()


def test_edit_below_current_members_is_refused(client_for, people, world):
    circle = world[0]
    more = [make_person(people.org) for _ in range(3)]
    Membership.objects.bulk_create(Membership(circle=circle, user=p) for p in more)
    data = circle_post(name=circle.name, capacity="4", start_date="2025-03-11")
    response = client_for(people.facilitator).post(reverse("circles:circle-edit", args=[circle.pk]), data)
    assert response.status_code == 200
    assert "5 people are in this circle already" in response.content.decode()


def test_adding_a_member_respects_capacity_and_organisation(client_for, people, world):
    circle = world[0]
    circle.capacity = 3
    circle.save()
    client = client_for(people.facilitator)
    url = reverse("circles:member-add", args=[circle.pk])
    newcomer = make_person(people.org, "Newcomer")
    assert client.post(url, {"person": newcomer.pk, "role": "member"}).status_code == 302
    assert circle.memberships.filter(user=newcomer, left_at__isnull=True).exists()
    full = client.post(url, {"person": make_person(people.org).pk, "role": "member"})
    assert "This circle is full (3 people)" in full.content.decode()
    foreign = client.post(url, {"person": people.outsider.pk, "role": "member"})
    assert "not in your organisation" in foreign.content.decode()
    assert circle.memberships.filter(left_at__isnull=True).count() == 3


def test_members_see_only_their_own_circles(client_for, people, world):
    other = make_circle(people.facilitator, name="A circle Alice is not in")
    page = client_for(people.member).get(reverse("circles:circle-list")).content.decode()
    assert world[0].name in page and other.name not in page


def test_member_leaves_and_no_longer_sees_the_circle(client_for, people, world):
    client = client_for(people.member)
    client.post(reverse("circles:circle-leave", args=[world[0].pk]))
    assert client.get(reverse("circles:circle-detail", args=[world[0].pk])).status_code == 404


def test_circle_page_shows_crisis_resources_and_the_rota(client_for, people, world):
    CrisisLink.objects.create(organisation=people.org, label="Staff support line", phone="020 7946 0018")
    page = (
        client_for(people.member).get(reverse("circles:circle-detail", args=[world[0].pk])).content.decode()
    )
    assert "Staff support line" in page and "020 7946 0018" in page
    assert people.org.crisis_text[:40] in page
    assert "Facilitation rota" in page


def test_a_crisis_resource_edit_shows_on_the_next_page_and_only_in_its_organisation(
    client_for, people, world
):
    link = CrisisLink.objects.create(organisation=people.org, label="Staff support line", phone="0800 1")
    url = reverse("circles:circle-detail", args=[world[0].pk])
    assert "Staff support line" in client_for(people.member).get(url).content.decode()
    link.label = "Night support line"  # as the admin's change would, bypassing any service
    link.save()
    people.org.crisis_text = "Call the duty manager first."
    people.org.save()
    page = client_for(people.member).get(url).content.decode()
    assert "Night support line" in page and "Staff support line" not in page
    assert "Call the duty manager first." in page
    other = make_person(make_org("Elsewhere"), "Olga Other", is_facilitator=True)
    other_circle = make_circle(other, "Their circle")
    their_page = client_for(other).get(reverse("circles:circle-detail", args=[other_circle.pk]))
    elsewhere = their_page.content.decode()
    assert "Night support line" not in elsewhere and "Call the duty manager first." not in elsewhere


def test_crisis_resources_keep_the_order_the_organisation_gave_them(client_for, people, world):
    CrisisLink.objects.create(organisation=people.org, label="Second line", phone="0800 2", position=2)
    CrisisLink.objects.create(
        organisation=people.org, label="First line", url="https://example.org", position=1
    )
    page = (
        client_for(people.member).get(reverse("circles:circle-detail", args=[world[0].pk])).content.decode()
    )
    assert page.index("First line") < page.index("Second line")
    assert '<a href="https://example.org" rel="noopener">First line</a>' in page
    assert '<a href="tel:08002">0800 2</a>' in page


def test_skip_with_a_reason_is_shown_to_members(client_for, people, world):
    session = world[1]
    response = client_for(people.facilitator).post(
        reverse("circles:session-change", args=[session.pk]), {"action": "skip", "reason": "Bank holiday"}
    )
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.status == Status.SKIPPED and session.revision == 1
    page = (
        client_for(people.member).get(reverse("circles:session-detail", args=[session.pk])).content.decode()
    )
    assert "Bank holiday" in page and "skipped" in page


def test_moving_into_the_clock_change_gap_is_refused(client_for, people, world):
    response = client_for(people.facilitator).post(
        reverse("circles:session-change", args=[world[1].pk]),
        {"action": "move", "reason": "Clash", "new_date": "2025-03-30", "new_time": "01:15"},
    )
    assert response.status_code == 200
    assert "does not exist" in response.content.decode()


def test_join_button_opens_ten_minutes_before_the_start(client_for, people, world):
    session = world[0].sessions.filter(starts_at__gt=NOW).order_by("starts_at").first()
    with time_machine.travel(session.starts_at - timedelta(minutes=11), tick=False):
        client = client_for(people.member)
        page = client.get(reverse("home")).content.decode()
        assert "Join opens at 13:50" in page and ">Join <span" not in page
    with time_machine.travel(session.starts_at - timedelta(minutes=10), tick=False):
        page = client.get(reverse("home"), headers={"HX-Request": "true"}).content.decode()
        assert 'id="upcoming-sessions"' in page and "<html" not in page
        # The first session's button is open; later ones still say when they open.
        assert page.count(">Join <span") == 1
        assert reverse("circles:session-room", args=[session.pk]) in page
        assert page.index(">Join <span") < page.index("Join opens at 13:50")


def test_home_shows_times_in_the_viewer_zone(client_for, people, world):
    people.member.time_zone = "America/New_York"
    people.member.save()
    session = (
        world[0].sessions.filter(starts_at__gt=NOW).order_by("starts_at").first()
    )  # 14:00 London, 11 March
    assert session.starts_at == datetime(2025, 3, 11, 14, tzinfo=UTC)
    page = client_for(people.member).get(reverse("home")).content.decode()
    assert "Tue 11 Mar, 10:00" in page  # New York is already on summer time on 11 March


def test_home_lists_the_next_eight_and_last_three_sessions_of_current_circles(client_for, people, world):
    circle = world[0]
    for week in range(1, 5):  # four more past sessions, a week apart before the one in `world`
        day = date(2025, 3, 4) - timedelta(weeks=week)
        CircleSession.objects.create(
            circle=circle,
            occurrence_date=day,
            starts_at=datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=14),
            ends_at=datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=15),
        )
    left = make_circle(people.facilitator, members=[people.member], start_date=date(2025, 3, 10), name="Left")
    services.circle_materialise(circle_id=left.pk)
    Membership.objects.filter(circle=left, user=people.member).update(left_at=NOW)
    mine = circle.sessions.order_by("starts_at")
    upcoming = [s.pk for s in mine if s.ends_at > NOW][:8]
    past = [s.pk for s in reversed(mine) if s.ends_at <= NOW][:3]
    assert len(upcoming) == 8 and len(past) == 3

    page = client_for(people.member).get(reverse("home")).content.decode()

    shown = [int(pk) for pk in re.findall(r'href="/circles/sessions/(\d+)/"', page)]
    assert shown == upcoming + past
    assert "Left" not in page


def test_home_empty_state_says_what_to_do(client_for, people):
    page = client_for(people.member).get(reverse("home")).content.decode()
    assert "No sessions coming up. When a facilitator adds you to a circle" in page
    assert "Sessions you have been part of will be listed here afterwards." in page
    assert f'href="{reverse("circles:circle-list")}"' in page  # "Circles" in the main navigation
    circles_page = client_for(people.member).get(reverse("circles:circle-list")).content.decode()
    assert "You are not in a circle yet" in circles_page


def test_calendar_page_makes_regenerates_and_revokes_the_address(client_for, people):
    client = client_for(people.member)
    url = reverse("circles:calendar")
    client.post(url, {"action": "regenerate"})
    first = CalendarFeed.objects.get(user=people.member).token
    client.post(url, {"action": "regenerate"})
    second = CalendarFeed.objects.get(user=people.member).token
    assert first != second
    assert client.get(reverse("circles:calendar-feed", args=[first])).status_code == 404
    assert second in client.get(url).content.decode()
    client.post(url, {"action": "revoke"})
    assert client.get(reverse("circles:calendar-feed", args=[second])).status_code == 404


def test_template_formset_saves_rounds_in_the_given_order(client_for, people):
    data = {
        "name": "Short circle",
        "description": "",
        "rounds-TOTAL_FORMS": "3",
        "rounds-INITIAL_FORMS": "0",
        "rounds-MIN_NUM_FORMS": "0",
        "rounds-MAX_NUM_FORMS": "20",
        "rounds-0-kind": "check_out",
        "rounds-0-title": "Check-out",
        "rounds-0-minutes_per_speaker": "1",
        "rounds-0-ORDER": "2",
        "rounds-1-kind": "check_in",
        "rounds-1-title": "Arriving",
        "rounds-1-minutes_per_speaker": "2",
        "rounds-1-ORDER": "1",
        "rounds-2-kind": "",  # an untouched blank row
        "rounds-2-minutes_per_speaker": "3",
    }
    response = client_for(people.facilitator).post(reverse("circles:template-create"), data)
    template = SessionTemplate.objects.get(name="Short circle")
    assert response.url == reverse("circles:template-detail", args=[template.pk])
    assert list(template.rounds.values_list("position", "title")) == [(1, "Arriving"), (2, "Check-out")]
    assert template.organisation == people.org


def test_copying_the_default_template_gives_an_editable_copy(client_for, people):
    default = SessionTemplate.objects.get(organisation=None)
    client = client_for(people.facilitator)
    assert client.get(reverse("circles:template-edit", args=[default.pk])).status_code == 403
    response = client.post(reverse("circles:template-copy", args=[default.pk]))
    copy = SessionTemplate.objects.get(organisation=people.org)
    assert response.url == reverse("circles:template-edit", args=[copy.pk])
    assert copy.rounds.count() == default.rounds.count()
