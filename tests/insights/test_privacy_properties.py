"""Over generated organisations: nothing a manager or admin can reach rests on fewer than k people,
and no two nested populations they can see differ by fewer than k people."""

from datetime import UTC, datetime

import pytest
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Organisation, Team
from insights import privacy
from tests.factories import make_person
from tests.insights.builders import add_circle, add_people, add_session, refresh
from tests.insights.pages import csv_rows, html_rows

SUPPRESSED = {"hidden", "not added up"}


@st.composite
def organisations(draw):
    k = draw(st.sampled_from([3, 5]))
    team_sizes = draw(st.lists(st.integers(0, 12), min_size=1, max_size=6))
    people = [team for team, size in enumerate(team_sizes) for _ in range(size)]
    circles = []
    if people:
        for _ in range(draw(st.integers(0, 4))):
            members = draw(
                st.lists(st.sampled_from(range(len(people))), min_size=1, max_size=10, unique=True)
            )
            sessions = []
            for day in draw(st.lists(st.integers(1, 28), max_size=3, unique=True)):
                status = draw(st.sampled_from(["ended", "ended", "cancelled", "skipped"]))
                came = draw(st.lists(st.sampled_from(members), unique=True)) if status == "ended" else []
                sessions.append((day, status, came))
            circles.append((members, sessions))
    managed = draw(st.lists(st.sampled_from(range(len(team_sizes))), min_size=1, unique=True))
    return k, team_sizes, people, circles, managed


def _oracle(k, people_teams, circles, population: set[int], month: str) -> dict[str, tuple[int, ...]]:
    """The sizes each figure rests on, worked out from the generated data alone."""
    scheduled, held, came = set(), set(), set()
    if month == "2025-05":
        for members, sessions in circles:
            for _, status, attended in sessions:
                expected = set(members) & population
                scheduled |= expected
                if status == "ended":
                    held |= expected
                    came |= set(attended) & population
    staff = len(population)
    takers = (len(came), staff - len(came))
    return {
        "staff": (staff,),
        "sessions_scheduled": (staff, len(scheduled)),
        "sessions_held": (staff, len(held)),
        "circles_active": (staff, len(held)),
        "attendance_rate": (staff, len(held), len(came)),
        "participants": (staff, *takers),
        "share_taking_part": (staff, *takers),
        "sessions_per_participant": (staff, *takers),
    }


def _check_rows(k, people_teams, circles, rows_with_population):
    for population, month, cells in rows_with_population:
        bases = _oracle(k, people_teams, circles, population, month)
        for column, text in zip(privacy.COLUMNS, cells, strict=True):
            if text in SUPPRESSED or text == f"fewer than {k}":
                continue
            assert min(bases[column.key]) >= k, (column.key, text, bases[column.key])


@pytest.mark.django_db
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(generated=organisations())
def test_nothing_reachable_rests_on_fewer_than_k_people(client, frozen, generated):
    k, team_sizes, people_teams, circles, managed = generated
    with transaction.atomic():
        _check_organisation(client, k, team_sizes, people_teams, circles, managed)
        transaction.set_rollback(True)


def _check_organisation(client, k, team_sizes, people_teams, circles, managed):
    org = Organisation.objects.create(name="Generated", anonymity_threshold=k)
    teams = [Team.objects.create(organisation=org, name=f"Team {index}") for index in range(len(team_sizes))]
    users = []
    for index, size in enumerate(team_sizes):
        users += add_people(org, teams[index], size)
    for members, sessions in circles:
        circle = add_circle(org, [users[m] for m in members])
        for day, status, came in sessions:
            add_session(
                circle,
                datetime(2025, 5, day, 13, tzinfo=UTC),
                status=status,
                attended=[users[m] for m in came],
            )
    refresh(org)
    manager = make_person(org, "Viewer", is_member=False, managed_teams=[teams[i] for i in managed])
    admin = make_person(org, "Admin viewer", is_org_admin=True)
    by_label = {
        team.name: {i for i, t in enumerate(people_teams) if t == index} for index, team in enumerate(teams)
    }
    small = {i for i, t in enumerate(people_teams) if team_sizes[t] < k}
    by_label[privacy.OTHER_LABEL] = small

    for viewer in (manager, admin):
        client.force_login(viewer, backend="accounts.backends.UserBackend")
        seen_populations = []
        page = client.get(reverse("insights:month", args=["2025-05"]))
        csv_page = client.get(reverse("insights:month-csv", args=["2025-05"]))
        html = html_rows(page.content)
        exported = csv_rows(csv_page.content)
        # The page and the export show the same figures.
        assert [row[:1] + row[1:] for row in html] == [[row[0], *row[2:]] for row in exported]
        group_labels = [row[0] for row in exported if row[0] != privacy.TOTAL_LABEL]
        visible = set().union(*(by_label[label] for label in group_labels)) if group_labels else set()
        by_label[privacy.TOTAL_LABEL] = visible
        checked = []
        for row in exported:
            population = by_label[row[0]]
            seen_populations.append(frozenset(population))
            checked.append((population, row[1], row[2:]))
        for label in group_labels:
            key = (
                "other"
                if label == privacy.OTHER_LABEL
                else privacy.group_key_for_team(teams[int(label.split()[-1])].pk)
            )
            trend = csv_rows(client.get(reverse("insights:group-csv", args=[key])).content)
            trend_html = html_rows(client.get(reverse("insights:group", args=[key])).content)
            assert [row[1:] for row in trend_html] == [row[2:] for row in trend]
            checked += [(by_label[label], row[1], row[2:]) for row in trend]
        _check_rows(k, people_teams, circles, checked)
        # Differencing: populations one can see are either the same, or differ by k or more people.
        for small_population in seen_populations:
            for big_population in seen_populations:
                if small_population < big_population:
                    assert len(big_population - small_population) >= k
