from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import time_machine

from tests.factories import make_team
from tests.insights.builders import NOW, add_circle, add_people, add_session, refresh


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def world(people, frozen):
    """The personas' organisation with teams big enough to show (k = 5), refreshed for June 2025.

    Crisis team (10 staff, managed by the manager), Community team (8), and two small teams, Night
    (2, also managed by the manager) and Day (4), which only appear pooled (6 staff).
    """
    crisis = [people.member, people.facilitator, *add_people(people.org, people.team, 8, "Crisis")]
    community = [people.manager, people.admin, *add_people(people.org, people.other_team, 6, "Community")]
    night_team = make_team(people.org, "Night team")
    day_team = make_team(people.org, "Day team")
    night = add_people(people.org, night_team, 2, "Night")
    day = add_people(people.org, day_team, 4, "Day")
    people.manager.managed_teams.add(night_team)
    circles = [
        add_circle(people.org, crisis[:6] + community[2:4], "Tuesday circle"),
        add_circle(people.org, crisis[6:] + night + day, "Thursday circle"),
    ]
    for week in range(4):
        may = datetime(2025, 5, 6 + 7 * week, 13, tzinfo=UTC)
        add_session(circles[0], may, attended=crisis[: 5 + week % 2] + community[2:3])
        add_session(circles[1], may, attended=crisis[6:8] + night + day)
    add_session(circles[0], datetime(2025, 5, 30, 13, tzinfo=UTC), status="cancelled")
    refresh(people.org)
    return SimpleNamespace(
        **vars(people),
        night_team=night_team,
        day_team=day_team,
        crisis=crisis,
        community=community,
        circles=circles,
    )
