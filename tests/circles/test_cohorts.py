"""Cohorts end to end: the plan becomes real circles that keep every hard constraint, publishing is
idempotent and tells each person once, joining or leaving mid-plan touches only cycles to come,
and only facilitators and admins of the organisation reach the pages."""

from collections import defaultdict
from datetime import UTC, date, datetime, time
from itertools import combinations

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.urls import reverse

from accounts.models import LineManagementLink, User
from circles import cohorts
from circles.cohort_selectors import cohort_preview
from circles.mixing import circle_count
from circles.models import (
    Circle,
    CircleSession,
    Cohort,
    CohortCircle,
    CohortKeepApart,
    CohortPlacement,
    CohortUnavailability,
    Membership,
    Notification,
)
from tests.factories import shipped_template

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
START = date(2025, 3, 18)  # a Tuesday; cycles of two weeks: 18 Mar, 1 Apr, 15 Apr
IN_CYCLE_TWO = datetime(2025, 4, 3, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def quick_planner(monkeypatch):
    # Small cohorts reach a proven optimum at once; the budget only bounds the rare slow case.
    monkeypatch.setattr(cohorts, "PLAN_SECONDS", 0.5)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def crowd(people, clock):
    """13 people over two teams: Staff 0 line-manages Staff 1, Staff 2 holds the facilitator role."""
    # Built without a password: nobody here signs in, and hashing twelve passwords costs seconds.
    staff = [
        User.objects.create(
            email=f"staff.{i}@example.org",
            display_name=f"Staff {i}",
            organisation=people.org,
            team=people.team if i % 2 else people.other_team,
            is_facilitator=i == 2,
        )
        for i in range(12)
    ]
    staff.append(people.member)
    LineManagementLink.objects.create(manager=staff[0], report=staff[1])
    return staff


def make_cohort(people, members, **fields):
    details = {
        "name": "Spring cohort",
        "circle_size": 4,
        "cycles": 3,
        "cycle_weeks": 2,
        "start_date": START,
        "time_zone": "Europe/London",
        "start_time": time(14, 0),
        "duration_minutes": 60,
    }
    details.update(fields)
    return cohorts.cohort_create(
        actor=people.facilitator, template=shipped_template(), members=list(members), **details
    )


def seating(cohort) -> dict[int, list[set[int]]]:
    """cycle -> the active members of each of its circles, read from the circles, not the plan."""
    seats = defaultdict(list)
    for link in CohortCircle.objects.filter(cohort=cohort):
        seats[link.cycle].append(
            set(
                Membership.objects.filter(circle_id=link.circle_id, left_at__isnull=True).values_list(
                    "user_id", flat=True
                )
            )
        )
    return seats


def forbidden(cohort) -> set[frozenset]:
    pairs = {frozenset(p) for p in LineManagementLink.objects.values_list("manager_id", "report_id")}
    return pairs | {
        frozenset(p) for p in CohortKeepApart.objects.filter(cohort=cohort).values_list("first", "second")
    }


def assert_circles_keep_constraints(cohort, *, cycles=None):
    members = set(cohort.memberships.values_list("user_id", flat=True))
    away = defaultdict(set)
    for user_id, cycle in CohortUnavailability.objects.filter(cohort=cohort).values_list("user_id", "cycle"):
        away[cycle].add(user_id)
    seats = seating(cohort)
    for cycle in cycles if cycles is not None else range(cohort.cycles):
        circles = seats[cycle]
        seated = [u for c in circles for u in c]
        assert sorted(seated) == sorted(members - away[cycle]), f"cycle {cycle}"
        sizes = sorted(len(c) for c in circles)
        assert len(circles) == circle_count(len(seated), cohort.circle_size)
        assert sizes[-1] - sizes[0] <= 1
        for circle in circles:
            assert not any(frozenset(pair) in forbidden(cohort) for pair in combinations(circle, 2))


def plan_and_publish(people, cohort, now=NOW):
    cohorts.cohort_plan(actor=people.facilitator, cohort=cohort, now=now, seed=1)
    return cohorts.cohort_publish(actor=people.facilitator, cohort=cohort, now=now)


# --- Constraints, through the database ---------------------------------------------------------


def test_published_circles_keep_line_managers_keep_apart_pairs_and_unavailable_cycles(people, crowd):
    cohort = make_cohort(people, crowd)
    cohorts.keep_apart_add(actor=people.facilitator, cohort=cohort, first=crowd[3], second=crowd[4])
    cohorts.keep_apart_add(actor=people.facilitator, cohort=cohort, first=crowd[5], second=crowd[4])
    cohorts.unavailability_add(actor=people.facilitator, cohort=cohort, person=crowd[6], cycle=1)

    result = plan_and_publish(people, cohort)

    assert result.created == sum(len(c) for c in seating(cohort).values())
    assert_circles_keep_constraints(cohort)
    assert all(crowd[6].pk not in circle for circle in seating(cohort)[1])
    # Real circles: weekly through their cycle, sessions planned, everyone takes turns facilitating.
    first = CohortCircle.objects.filter(cohort=cohort, cycle=0).select_related("circle").first().circle
    assert (first.start_date, first.end_date) == (date(2025, 3, 18), date(2025, 3, 31))
    assert first.sessions.count() == 2
    assert not first.memberships.filter(rota_opt_in=False).exists()
    assert Membership.objects.get(user=crowd[2], circle__cohort_link__cycle=0).role == "facilitator"
    assert not Membership.objects.filter(user=people.facilitator, circle__cohort_link__cohort=cohort).exists()


def test_uneven_cohort_gets_circles_that_differ_by_one_at_most(people, crowd):
    cohort = make_cohort(people, crowd[:10], circle_size=4)  # 10 people: 4 + 3 + 3

    plan_and_publish(people, cohort)

    for cycle, circles in seating(cohort).items():
        assert sorted(len(c) for c in circles) == [3, 3, 4], cycle
    assert_circles_keep_constraints(cohort)


def test_a_keep_apart_pair_added_after_publishing_is_moved_apart_in_the_circles(people, crowd):
    cohort = make_cohort(people, crowd)
    plan_and_publish(people, cohort)
    together = next(c for c in seating(cohort)[1] if len(c) >= 2)
    first, second = sorted(together)[:2]

    cohorts.keep_apart_add(
        actor=people.facilitator,
        cohort=cohort,
        first=User.objects.get(pk=first),
        second=User.objects.get(pk=second),
        now=NOW,
    )

    assert_circles_keep_constraints(cohort)


def test_a_plan_that_cannot_keep_everyone_apart_says_who_without_changing_anything(people, crowd):
    cohort = make_cohort(people, crowd[2:8], circle_size=3)  # two circles of three
    a, b, c = crowd[2:5]
    for first, second in ((a, b), (b, c), (a, c)):
        CohortKeepApart.objects.create(
            cohort=cohort, first_id=min(first.pk, second.pk), second_id=max(first.pk, second.pk)
        )

    with pytest.raises(ValidationError) as raised:
        cohorts.cohort_plan(actor=people.facilitator, cohort=cohort)

    assert "Staff 2" in raised.value.messages[0] and "kept apart" in raised.value.messages[0]
    assert not CohortPlacement.objects.filter(cohort=cohort).exists()


# --- Publishing --------------------------------------------------------------------------------


def test_publishing_again_changes_nothing_and_tells_nobody(people, crowd):
    cohort = make_cohort(people, crowd)
    plan_and_publish(people, cohort)
    before = (
        sorted(Circle.objects.values_list("pk", flat=True)),
        sorted(Membership.objects.values_list("pk", "left_at")),
        CircleSession.objects.count(),
        Notification.objects.count(),
    )

    again = cohorts.cohort_publish(actor=people.facilitator, cohort=cohort, now=NOW)

    assert again == cohorts.PublishResult()
    assert before == (
        sorted(Circle.objects.values_list("pk", flat=True)),
        sorted(Membership.objects.values_list("pk", "left_at")),
        CircleSession.objects.count(),
        Notification.objects.count(),
    )


def test_each_person_is_told_once_per_publish_with_a_link_to_their_first_new_circle(people, crowd):
    cohort = make_cohort(people, crowd)

    result = plan_and_publish(people, cohort)

    told = Notification.objects.filter(kind="mixing")
    assert result.notified == len(crowd)
    assert sorted(told.values_list("user_id", flat=True)) == sorted(p.pk for p in crowd)
    mine = told.get(user=people.member)
    first = Circle.objects.get(cohort_link__cycle=0, memberships__user=people.member)
    assert mine.url == reverse("circles:circle-detail", args=[first.pk])
    assert first.name in mine.title


def test_publishing_needs_a_plan_that_fits(people, crowd):
    cohort = make_cohort(people, crowd)
    with pytest.raises(ValidationError, match="Make a plan first"):
        cohorts.cohort_publish(actor=people.facilitator, cohort=cohort, now=NOW)
    cohorts.cohort_plan(actor=people.facilitator, cohort=cohort, now=NOW)
    # A line-management link set up by an admin after planning makes the plan stale.
    groups = defaultdict(list)
    for p in CohortPlacement.objects.filter(cohort=cohort, cycle=2):
        groups[p.group].append(p.user_id)
    a, b = next(g for g in groups.values() if len(g) >= 2)[:2]
    LineManagementLink.objects.create(manager_id=a, report_id=b)

    with pytest.raises(ValidationError, match="Plan again"):
        cohorts.cohort_publish(actor=people.facilitator, cohort=cohort, now=NOW)
    assert not Circle.objects.exists()


# --- Joining and leaving mid-plan -------------------------------------------------------------


def snapshot(cohort, cycles):
    return {
        cycle: sorted(
            Membership.objects.filter(
                circle__cohort_link__cohort=cohort, circle__cohort_link__cycle=cycle
            ).values_list("pk", "circle_id", "user_id", "left_at")
        )
        for cycle in cycles
    }, sorted(
        CohortPlacement.objects.filter(cohort=cohort, cycle__in=cycles).values_list(
            "cycle", "group", "user_id"
        )
    )


def edit_members(people, cohort, members, now):
    cohort.refresh_from_db()
    details = {field: getattr(cohort, field) for field in cohorts.COHORT_FIELDS}
    return cohorts.cohort_update(
        actor=people.facilitator, cohort=cohort, template=cohort.template, members=members, now=now, **details
    )


def test_someone_joining_mid_plan_gets_a_circle_in_future_cycles_only(people, crowd, clock):
    cohort = make_cohort(people, crowd[:12])
    plan_and_publish(people, cohort)
    clock.move_to(IN_CYCLE_TWO)
    before = snapshot(cohort, [0, 1])
    Notification.objects.all().delete()

    edit_members(people, cohort, crowd, IN_CYCLE_TWO)  # crowd[12] joins

    assert snapshot(cohort, [0, 1]) == before
    newcomer = crowd[12]
    assert [sum(newcomer.pk in c for c in seating(cohort)[cycle]) for cycle in range(3)] == [0, 0, 1]
    assert_circles_keep_constraints(cohort, cycles=[2])
    # Told once, about the circle they joined; others are told only if their cycle-3 circle changed.
    assert Notification.objects.filter(user=newcomer, kind="mixing").count() == 1
    assert not Notification.objects.values("user").annotate(n=Count("id")).filter(n__gt=1).exists()


def test_someone_leaving_mid_plan_keeps_their_current_circle_and_leaves_future_ones(people, crowd, clock):
    cohort = make_cohort(people, crowd)
    plan_and_publish(people, cohort)
    clock.move_to(IN_CYCLE_TWO)
    before = snapshot(cohort, [0, 1])
    leaver = crowd[7]

    edit_members(people, cohort, [p for p in crowd if p != leaver], IN_CYCLE_TWO)

    assert snapshot(cohort, [0, 1]) == before
    assert Membership.objects.filter(user=leaver, left_at__isnull=True, circle__cohort_link__cycle=1).exists()
    assert not Membership.objects.filter(
        user=leaver, left_at__isnull=True, circle__cohort_link__cycle=2
    ).exists()
    assert not CohortPlacement.objects.filter(cohort=cohort, cycle=2, user=leaver).exists()
    assert_circles_keep_constraints(cohort, cycles=[2])


def test_a_started_cycle_cannot_be_sat_out_or_cut(people, crowd, clock):
    cohort = make_cohort(people, crowd)
    plan_and_publish(people, cohort)
    clock.move_to(IN_CYCLE_TWO)
    with pytest.raises(ValidationError, match="has started"):
        cohorts.unavailability_add(
            actor=people.facilitator, cohort=cohort, person=crowd[0], cycle=1, now=IN_CYCLE_TWO
        )
    details = {field: getattr(cohort, field) for field in cohorts.COHORT_FIELDS} | {"cycles": 1}
    with pytest.raises(ValidationError, match="2 cycles have started"):
        cohorts.cohort_update(
            actor=people.facilitator,
            cohort=cohort,
            template=cohort.template,
            members=crowd,
            now=IN_CYCLE_TWO,
            **details,
        )


# --- Pages and access --------------------------------------------------------------------------


@pytest.fixture
def world(people, crowd):
    """A cohort with a keep-apart pair and someone sitting cycle 3 out: everything the pages need."""
    cohort = make_cohort(people, crowd)
    pair = cohorts.keep_apart_add(actor=people.facilitator, cohort=cohort, first=crowd[3], second=crowd[4])
    away = cohorts.unavailability_add(actor=people.facilitator, cohort=cohort, person=crowd[5], cycle=2)
    return cohort, pair, away


@pytest.fixture
def published(people, world):
    plan_and_publish(people, world[0])
    return world


def cases():
    """(url name, args from (cohort, pair, away), method, status for a facilitator or admin).

    Publish comes before plan: with no plan yet it answers with a message, not a publish. The two
    add forms posted empty answer 200 with their errors on the page.
    """
    return [
        ("circles:cohort-list", lambda w: [], "get", 200),
        ("circles:cohort-create", lambda w: [], "get", 200),
        ("circles:cohort-detail", lambda w: [w[0].pk], "get", 200),
        ("circles:cohort-edit", lambda w: [w[0].pk], "get", 200),
        ("circles:cohort-publish", lambda w: [w[0].pk], "post", 302),
        ("circles:cohort-plan", lambda w: [w[0].pk], "post", 302),
        ("circles:cohort-keep-apart", lambda w: [w[0].pk], "post", 200),
        ("circles:cohort-keep-apart-delete", lambda w: [w[0].pk, w[1].pk], "post", 302),
        ("circles:cohort-unavailable", lambda w: [w[0].pk], "post", 200),
        ("circles:cohort-unavailable-delete", lambda w: [w[0].pk, w[2].pk], "post", 302),
    ]


LIST_PAGES = ("circles:cohort-list", "circles:cohort-create")


def responses(client, world, *, only_objects=False):
    """Each cohort page's response for one signed-in (or anonymous) client, by url name."""
    answers = {}
    for name, args, method, _ in cases():
        if only_objects and name in LIST_PAGES:
            continue
        url = reverse(name, args=args(world))
        answers[name] = client.post(url, {}) if method == "post" else client.get(url)
    return answers


def test_anonymous_visitor_is_sent_to_sign_in_from_every_cohort_page(client, world):
    for name, response in responses(client, world).items():
        assert response.status_code == 302, name
        assert response.url.startswith(reverse("accounts:login")), name


@pytest.mark.parametrize("who", ["facilitator", "admin"])
def test_facilitators_and_admins_of_the_organisation_reach_every_cohort_page(client_for, people, world, who):
    answers = responses(client_for(getattr(people, who)), world)
    assert {name: r.status_code for name, r in answers.items()} == {c[0]: c[3] for c in cases()}
    assert CohortPlacement.objects.filter(cohort=world[0]).exists(), "the plan button planned"


def test_another_organisation_gets_404_from_every_cohort_page(client_for, people, world):
    answers = responses(client_for(people.outsider), world, only_objects=True)
    assert {r.status_code for r in answers.values()} == {404}
    assert CohortKeepApart.objects.exists() and CohortUnavailability.objects.exists()


@pytest.mark.parametrize("who", ["member", "manager"])
def test_members_and_managers_get_403_from_every_cohort_page(client_for, people, world, who):
    answers = responses(client_for(getattr(people, who)), world)
    assert {name: r.status_code for name, r in answers.items()} == {c[0]: 403 for c in cases()}
    assert CohortKeepApart.objects.exists() and CohortUnavailability.objects.exists()
    assert not CohortPlacement.objects.exists()


def test_cohort_actions_refuse_get(client_for, people, world):
    client = client_for(people.facilitator)
    for name, args, method, _ in cases():
        if method == "post":
            assert client.get(reverse(name, args=args(world))).status_code == 405, name


def test_preview_shows_each_cycles_circles_figures_and_no_violations(client_for, people, published):
    page = client_for(people.facilitator).get(reverse("circles:cohort-detail", args=[published[0].pk]))
    html = page.content.decode()
    assert "Cycle 3: 15 Apr to 28 Apr 2025" in html
    assert html.count("Constraint violations: 0") == 3
    assert "New pairs: 100%" in html
    assert "Staff 7" in html and "Published" in html


def test_facilitators_find_cohorts_from_their_circles_page(client_for, people):
    html = client_for(people.facilitator).get(reverse("circles:circle-list")).content.decode()
    assert reverse("circles:cohort-list") in html
    html = client_for(people.member).get(reverse("circles:circle-list")).content.decode()
    assert reverse("circles:cohort-list") not in html


def test_cohort_list_reads_in_a_fixed_number_of_queries(client_for, people, crowd, django_assert_num_queries):
    for n in range(3):
        make_cohort(people, crowd, name=f"Cohort {n}")
    client = client_for(people.facilitator)
    client.get(reverse("circles:cohort-list"))
    with django_assert_num_queries(3):  # session, user, cohorts with their counts
        response = client.get(reverse("circles:cohort-list"))
    assert response.content.decode().count("Cohort ") >= 3


# --- Bad input: form errors, never a 500 -------------------------------------------------------


def form_data(crowd, **changes):
    data = {
        "name": "Autumn cohort",
        "members": [p.pk for p in crowd],
        "circle_size": 4,
        "cycles": 3,
        "cycle_weeks": 2,
        "start_date": "2025-03-18",
        "start_time": "14:00",
        "time_zone": "Europe/London",
        "duration_minutes": 60,
        "template": shipped_template().pk,
    }
    data.update(changes)
    return data


def test_a_facilitator_sets_up_a_cohort_with_the_shipped_template(client_for, people, crowd):
    client = client_for(people.facilitator)
    form = client.get(reverse("circles:cohort-create")).context["form"]
    assert form.initial["template"] == shipped_template().pk
    response = client.post(reverse("circles:cohort-create"), form_data(crowd))
    cohort = Cohort.objects.get(name="Autumn cohort")
    assert response.url == reverse("circles:cohort-detail", args=[cohort.pk])
    assert cohort.memberships.count() == len(crowd) and cohort.template == shipped_template()


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"circle_size": 13}, "circle_size", "less than or equal to 12"),
        ({"circle_size": 1}, "circle_size", "greater than or equal to 2"),
        ({"cycles": 0}, "cycles", "greater than or equal to 1"),
        ({"cycle_weeks": 40}, "cycle_weeks", "less than or equal to 12"),
        ({"name": " "}, "name", "required"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "not a time zone"),
        ({"start_date": "31/02/2025"}, "start_date", "valid date"),
        ({"circle_size": 12}, "members", "nothing to mix"),
        ({"start_date": "2025-03-30", "start_time": "01:30", "cycles": 1}, "start_time", "go forward"),
    ],
)
def test_bad_cohort_input_gives_form_errors(client_for, people, crowd, changes, field, words):
    response = client_for(people.facilitator).post(
        reverse("circles:cohort-create"), form_data(crowd, **changes)
    )
    assert response.status_code == 200
    assert any(words in e for e in response.context["form"].errors[field]), response.context["form"].errors
    assert not Cohort.objects.exists()


def test_someone_from_another_organisation_cannot_be_put_in_a_cohort(client_for, people, crowd):
    data = form_data(crowd, members=[p.pk for p in crowd] + [people.outsider.pk])
    response = client_for(people.facilitator).post(reverse("circles:cohort-create"), data)
    assert response.status_code == 200
    assert "not in your organisation" in str(response.context["form"].errors["members"])
    with pytest.raises(ValidationError, match="belong to your organisation"):
        make_cohort(people, [*crowd, people.outsider])


def test_someone_who_does_not_take_part_in_circles_is_named(client_for, people, crowd):
    response = client_for(people.facilitator).post(
        reverse("circles:cohort-create"),
        form_data(crowd, members=[p.pk for p in crowd] + [people.manager.pk]),
    )
    assert "Mo Manager" in str(response.context["form"].errors["members"])


def test_published_dates_cannot_be_moved(client_for, people, published):
    cohort = published[0]
    crowd = list(cohort.members.all())
    response = client_for(people.facilitator).post(
        reverse("circles:cohort-edit", args=[cohort.pk]),
        form_data(crowd, name=cohort.name, start_date="2025-03-25"),
    )
    assert "stay as they are" in str(response.context["form"].errors["start_date"])


@pytest.mark.parametrize(
    ("url", "data", "words"),
    [
        (
            "circles:cohort-keep-apart",
            lambda c: {"first": c[3].pk, "second": c[3].pk},
            "two different people",
        ),
        ("circles:cohort-keep-apart", lambda c: {"first": c[3].pk, "second": c[4].pk}, "already kept apart"),
        (
            "circles:cohort-keep-apart",
            lambda c: {"first": c[3].pk, "second": 999999},
            "someone in this cohort",
        ),
        ("circles:cohort-unavailable", lambda c: {"person": c[3].pk, "cycle": 7}, "Select a valid choice"),
        ("circles:cohort-unavailable", lambda c: {"person": c[5].pk, "cycle": 2}, "already sits out"),
        ("circles:cohort-unavailable", lambda c: {"person": "x", "cycle": "y"}, "someone in this cohort"),
    ],
)
def test_bad_keep_apart_or_unavailable_input_gives_form_errors(
    client_for, people, crowd, world, url, data, words
):
    response = client_for(people.facilitator).post(reverse(url, args=[world[0].pk]), data(crowd))
    assert response.status_code == 200
    assert words in response.content.decode()


def test_an_impossible_plan_is_a_message_not_a_500(client_for, people, crowd):
    cohort = make_cohort(people, crowd[2:8], circle_size=3)
    a, b, c = crowd[2:5]
    for first, second in ((a, b), (b, c), (a, c)):
        cohorts.keep_apart_add(actor=people.facilitator, cohort=cohort, first=first, second=second)
    response = client_for(people.facilitator).post(
        reverse("circles:cohort-plan", args=[cohort.pk]), follow=True
    )
    assert response.status_code == 200
    assert "must all be kept apart" in response.content.decode()


def test_the_demo_seeds_one_small_planned_cohort_once(db):
    from circles.demo import COHORT_NAME
    from config.demo import seed_demo

    seed_demo()
    seed_demo()

    cohort = Cohort.objects.get(name=COHORT_NAME)
    assert cohort.planned_at is not None and cohort.published_at is None
    assert not cohort.published_circles.exists()
    preview = cohort_preview(cohort, now=datetime.now(UTC))
    assert preview.violations == 0 and preview.problems == []
    assert [sum(len(c.people) for c in cycle.circles) for cycle in preview.cycles] == [12, 12, 12]
