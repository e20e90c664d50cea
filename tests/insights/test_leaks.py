from datetime import UTC, datetime

import pytest
from django.urls import reverse

from accounts.models import User
from circles.models import CircleSession
from insights import privacy
from reflections.models import Reply, Thread
from tests.factories import make_person, make_team
from tests.insights.builders import add_circle, add_people, add_session, refresh
from tests.insights.pages import csv_rows, reachable_urls

MARKER = "Zq7Marker"


@pytest.mark.django_db
def test_no_name_or_content_reaches_any_page_or_export(client_for, world):
    """A marker in every person's name and email, every circle's name, purpose and agreements, every
    session note and every reflection: none of it is in anything a manager, admin or member opens."""
    for user in User.objects.exclude(pk__in=[world.manager.pk, world.admin.pk, world.member.pk]):
        user.display_name = f"{MARKER} {user.pk}"
        user.email = f"{MARKER.lower()}{user.pk}@example.org"
        user.save()
    for circle in world.circles:
        circle.name, circle.purpose, circle.agreements = MARKER, MARKER, MARKER
        circle.save()
        thread = Thread.objects.create(circle=circle, author=world.crisis[2], title=MARKER, body=MARKER)
        Reply.objects.create(thread=thread, author=world.crisis[3], body=MARKER)
    CircleSession.objects.update(change_reason=MARKER)
    refresh(world.org)
    # What my manager sees, the overview, 12 months as page and CSV, each group as page and CSV.
    for viewer, count in ((world.manager, 26 + 2 * 2), (world.admin, 26 + 2 * 3), (world.member, 1)):
        client = client_for(viewer)
        urls = reachable_urls(viewer)
        assert len(urls) == count
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            assert MARKER.lower() not in response.content.decode().lower(), url


@pytest.mark.django_db
def test_a_total_never_gives_away_a_hidden_team_figure(client_for, world):
    """Crisis team's people taking part are hidden (only 2 did not take part); Community's are
    fewer than 5. The total would be Crisis + Community + pool: it must be hidden too."""
    rows = csv_rows(client_for(world.admin).get(reverse("insights:month-csv", args=["2025-05"])).content)
    column = 2 + [c.key for c in privacy.COLUMNS].index("participants")
    by_label = {row[0]: row[column] for row in rows}
    assert by_label["Crisis team"] == "hidden"
    assert by_label["Community team"] == "fewer than 5"
    assert by_label[privacy.TOTAL_LABEL] == "hidden"
    for index, heading in enumerate(privacy.COLUMNS):
        cells = [row[2 + index] for row in rows]
        if cells[-1] not in ("hidden", "not added up", "fewer than 5"):
            assert all(cell[0].isdigit() for cell in cells[:-1]), heading.key


@pytest.mark.django_db
def test_two_managers_of_different_small_teams_see_the_same_pool(client_for, world):
    """Differencing across viewers: if each manager's small teams made their own pool, two pools
    differing by one small team would give that team away. The pool is the organisation's."""
    other_manager = make_person(world.org, "Other Manager", is_member=False, managed_teams=[world.day_team])
    mine = client_for(world.manager).get(reverse("insights:group", args=["other"])).context["rows"]
    theirs = client_for(other_manager).get(reverse("insights:group", args=["other"])).context["rows"]
    assert mine == theirs


@pytest.mark.django_db
def test_a_team_that_shrinks_below_k_moves_into_the_pool(client_for, world):
    for person in world.community[3:]:
        person.is_active = False
        person.save()
    refresh(world.org)
    response = client_for(world.admin).get(reverse("insights:month", args=["2025-05"]))
    labels = [row.label for row in response.context["page"].object_list]
    assert "Community team" not in labels
    key = privacy.group_key_for_team(world.other_team.pk)
    assert client_for(world.admin).get(reverse("insights:group", args=[key])).status_code == 404


@pytest.mark.django_db
def test_a_pool_still_smaller_than_k_is_not_shown_at_all(client_for, people, frozen):
    big = people.team
    add_people(people.org, big, 6)
    tiny = make_team(people.org, "Tiny team")
    add_people(people.org, tiny, 2)
    circle = add_circle(people.org, list(tiny.members.all()) + list(big.members.all()))
    add_session(circle, datetime(2025, 5, 6, 13, tzinfo=UTC), attended=list(tiny.members.all()))
    refresh(people.org)
    response = client_for(people.admin).get(reverse("insights:month", args=["2025-05"]))
    labels = [row.label for row in response.context["page"].object_list]
    assert privacy.OTHER_LABEL not in labels
    assert reverse("insights:group", args=["other"]) not in response.content.decode()
    tiny_member = tiny.members.first()
    page = client_for(tiny_member).get(reverse("insights:my-team"))
    assert b"too small to be shown" in page.content
