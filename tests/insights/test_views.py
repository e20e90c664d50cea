import csv
import io

import pytest
from django.urls import reverse

from accounts.models import AuditEntry
from accounts.services import team_delete, team_rename
from insights import privacy, selectors
from tests.factories import make_person
from tests.insights.builders import add_people, refresh
from tests.insights.pages import html_rows

OVERVIEW = reverse("insights:overview")
MAY = reverse("insights:month", args=["2025-05"])
MAY_CSV = reverse("insights:month-csv", args=["2025-05"])
MY_TEAM = reverse("insights:my-team")


def group_url(team, csv_export=False):
    name = "insights:group-csv" if csv_export else "insights:group"
    return reverse(name, args=[privacy.group_key_for_team(team.pk)])


def csv_rows(response):
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.mark.django_db
class TestAccess:
    def test_anonymous_is_sent_to_sign_in(self, client, world):
        for url in (OVERVIEW, MAY_CSV, group_url(world.team), MY_TEAM):
            response = client.get(url)
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("accounts:login"))

    def test_other_organisation_gets_404_for_a_team(self, client_for, world):
        client = client_for(world.outsider)
        assert client.get(group_url(world.team)).status_code == 404
        assert client.get(group_url(world.team, csv_export=True)).status_code == 404

    def test_member_without_manager_capability_gets_403(self, client_for, world):
        client = client_for(world.member)
        assert client.get(OVERVIEW).status_code == 403
        assert client.get(MAY_CSV).status_code == 403
        assert client.get(group_url(world.team)).status_code == 403

    def test_member_sees_what_their_manager_sees(self, client_for, world):
        response = client_for(world.member).get(MY_TEAM)
        assert response.status_code == 200
        manager_page = client_for(world.manager).get(group_url(world.team))
        assert response.context["rows"] == manager_page.context["rows"]
        assert b"Crisis team" in response.content

    def test_manager_sees_only_their_teams(self, client_for, world):
        client = client_for(world.manager)
        response = client.get(MAY)
        assert response.status_code == 200
        labels = [row.label for row in response.context["page"].object_list]
        assert labels == ["Crisis team", privacy.OTHER_LABEL]
        assert client.get(group_url(world.other_team)).status_code == 403
        assert client.get(group_url(world.team)).status_code == 200

    def test_admin_sees_every_group(self, client_for, world):
        response = client_for(world.admin).get(MAY)
        labels = [row.label for row in response.context["page"].object_list]
        assert labels == ["Community team", "Crisis team", privacy.OTHER_LABEL]
        assert response.context["total"].label == privacy.TOTAL_LABEL

    def test_small_team_has_no_page_of_its_own(self, client_for, world):
        assert client_for(world.admin).get(group_url(world.night_team)).status_code == 404
        assert client_for(world.admin).get(reverse("insights:group", args=["other"])).status_code == 200

    def test_months_outside_the_last_twelve_are_404(self, client_for, world):
        client = client_for(world.admin)
        for month in ("2024-06", "2025-07", "May-2025", "2025-13"):
            assert client.get(reverse("insights:month", args=[month])).status_code == 404
        assert client.get(reverse("insights:month", args=["2024-07"])).status_code == 200

    def test_any_filter_is_refused_with_400(self, client_for, world):
        client = client_for(world.admin)
        assert client.get(OVERVIEW, {"from": "2025-05-03"}).status_code == 400
        assert client.get(MAY_CSV, {"page": "2"}).status_code == 400
        assert client.get(group_url(world.team), {"circle": "1"}).status_code == 400
        assert client.get(MY_TEAM, {"team": str(world.other_team.pk)}).status_code == 400
        assert client.get(MAY, {"page": "2"}).status_code == 200

    def test_pages_refuse_post_with_405(self, client_for, world):
        client = client_for(world.admin)
        for url in (OVERVIEW, MAY_CSV, group_url(world.team), MY_TEAM):
            assert client.post(url).status_code == 405

    def test_person_without_a_team_is_told_nobody_sees_them(self, client_for, world):
        loner = make_person(world.org, "Lone Person")
        response = client_for(loner).get(MY_TEAM)
        assert response.status_code == 200
        assert b"You are not in a team yet" in response.content


@pytest.mark.django_db
class TestFigures:
    def test_crisis_team_may_figures(self, client_for, world):
        rows = client_for(world.manager).get(MAY).context["page"].object_list
        crisis = rows[0]
        texts = {column.key: cell.text for column, cell in zip(privacy.COLUMNS, crisis.cells, strict=True)}
        # 10 staff, all in circles; 9 sessions planned (one cancelled), 8 held, 30 of 40 seats taken;
        # 8 took part, so the 2 who did not would be a group smaller than 5: hidden.
        assert texts == {
            "staff": "10",
            "sessions_scheduled": "9",
            "sessions_held": "8",
            "attendance_rate": "75%",
            "participants": "hidden",
            "share_taking_part": "hidden",
            "sessions_per_participant": "hidden",
            "circles_active": "2",
        }

    def test_csv_holds_exactly_what_the_pages_show(self, client_for, world):
        client = client_for(world.admin)
        page = client.get(MAY).context
        rows = csv_rows(client.get(MAY_CSV))
        assert rows[0] == ["Group", "Month", *(column.heading for column in privacy.COLUMNS)]
        shown = [*page["page"].object_list, page["total"]]
        assert rows[1:] == [[row.label, "2025-05", *(cell.text for cell in row.cells)] for row in shown]
        trend = client.get(group_url(world.team)).context["rows"]
        trend_csv = csv_rows(client.get(group_url(world.team, csv_export=True)))
        assert trend_csv[1:] == [
            [row.label, f"{row.month:%Y-%m}", *(cell.text for cell in row.cells)] for row in trend
        ]

    def test_csv_defuses_spreadsheet_formulas_in_team_names(self, client_for, world):
        world.team.name = "=HYPERLINK(1)"
        world.team.save()
        refresh(world.org)
        rows = csv_rows(client_for(world.admin).get(MAY_CSV))
        assert "'=HYPERLINK(1)" in [row[0] for row in rows]


@pytest.mark.django_db
class TestAudit:
    def test_every_view_and_export_is_recorded(self, client_for, world):
        client = client_for(world.manager)
        client.get(MAY)
        client.get(MAY_CSV)
        client.get(group_url(world.team))
        client_for(world.member).get(MY_TEAM)
        entries = list(AuditEntry.objects.filter(action__startswith="insights.").order_by("id"))
        assert [(e.actor, e.action, e.data["slice"]) for e in entries] == [
            (world.manager, "insights.viewed", "month"),
            (world.manager, "insights.exported", "month"),
            (world.manager, "insights.viewed", "group"),
            (world.member, "insights.viewed", "member"),
        ]
        assert entries[0].data["month"] == "2025-05"
        assert entries[2].data["group"] == privacy.group_key_for_team(world.team.pk)

    def test_refused_requests_record_nothing(self, client_for, world):
        client_for(world.member).get(MAY)
        client_for(world.admin).get(MAY, {"from": "2025-05-01"})
        assert not AuditEntry.objects.filter(action__startswith="insights.").exists()

    def test_admins_read_the_log_on_the_audit_page(self, client_for, world):
        client_for(world.manager).get(MAY)
        response = client_for(world.admin).get(reverse("accounts:audit"))
        assert b"insights.viewed" in response.content
        assert b"Insights for May 2025" in response.content


@pytest.mark.django_db
class TestQueryCounts:
    def test_overview_queries_do_not_grow_with_teams(self, client_for, world, django_assert_num_queries):
        client = client_for(world.admin)
        with django_assert_num_queries(QUERIES) as few:
            client.get(MAY)
        for n in range(30):
            team = world.org.teams.create(name=f"Extra team {n}")
            add_people(world.org, team, 5)
        refresh(world.org)
        with django_assert_num_queries(len(few.captured_queries)):
            response = client.get(MAY)
        assert response.context["page"].paginator.count == 33

    def test_a_second_look_reads_no_rollups(self, client_for, world, django_assert_num_queries):
        client = client_for(world.admin)
        client.get(MAY)
        # The rollups' version is read again; the groups and the month's rollups are not.
        with django_assert_num_queries(QUERIES - 2):
            client.get(MAY)

    def test_trend_queries_do_not_grow_with_months(self, client_for, world, django_assert_num_queries):
        client = client_for(world.manager)
        with django_assert_num_queries(QUERIES + 1):
            response = client.get(group_url(world.team))
        assert len(response.context["rows"]) == 12


# Session, user with organisation, the rollups' version, rollups for the current month (the
# groups), the month's rollups, the audit row in its savepoint (3); a manager adds the look-up of
# the teams they manage.
QUERIES = 8


@pytest.mark.django_db
class TestKeptResults:
    """The suppressed tables are kept between looks: never across scopes, never past a change."""

    def rows(self, client, url=MAY):
        response = client.get(url)
        labels = [row.label for row in response.context["page"].object_list]
        return labels, response.context["total"], html_rows(response.content)

    def test_a_table_kept_for_an_admin_is_not_shown_to_a_manager(self, client_for, world):
        admin = self.rows(client_for(world.admin))
        manager = self.rows(client_for(world.manager))
        assert admin[0] == ["Community team", "Crisis team", privacy.OTHER_LABEL]
        assert manager[0] == ["Crisis team", privacy.OTHER_LABEL]
        # The page's HTML (kept too) shows the manager's own rows and total, not the admin's.
        assert [row[0] for row in manager[2]] == [*manager[0], privacy.TOTAL_LABEL]
        assert manager[1] != admin[1]
        # Worked out afresh, each scope sees exactly what it was shown from the kept results.
        selectors.RECENT.clear()
        assert self.rows(client_for(world.manager)) == manager
        assert self.rows(client_for(world.admin)) == admin

    def test_a_refresh_shows_new_figures_at_once(self, client_for, world):
        client = client_for(world.admin)
        assert client.get(MAY).context["page"].object_list[1].cell("staff").text == "10"
        add_people(world.org, world.team, 3)
        refresh(world.org)
        assert client.get(MAY).context["page"].object_list[1].cell("staff").text == "13"

    def test_a_renamed_or_deleted_team_shows_at_once(self, client_for, world):
        client = client_for(world.admin)
        self.rows(client)
        team_rename(actor=world.admin, team=world.other_team, name="Outreach team")
        assert self.rows(client)[0] == ["Crisis team", "Outreach team", privacy.OTHER_LABEL]
        team_delete(actor=world.admin, team=world.other_team)
        assert self.rows(client)[0] == ["Crisis team", privacy.OTHER_LABEL]

    def test_every_look_is_recorded_even_when_kept(self, client_for, world):
        client = client_for(world.manager)
        for _ in range(3):
            client.get(MAY)
        assert AuditEntry.objects.filter(actor=world.manager, action="insights.viewed").count() == 3


@pytest.mark.django_db
def test_shown_shares_are_drawn_as_bars_and_tabled(client_for, people, frozen):
    from datetime import UTC, datetime

    from tests.insights.builders import add_circle, add_session

    staff = add_people(people.org, people.team, 18)
    circle = add_circle(people.org, staff[:9])
    add_session(circle, datetime(2025, 5, 6, 13, tzinfo=UTC), attended=staff[:6])
    refresh(people.org)
    response = client_for(people.admin).get(MAY)
    assert response.status_code == 200
    crisis = response.context["page"].object_list[0]
    # 20 staff, 6 took part and 14 did not: both groups are big enough.
    assert crisis.cell("share_taking_part").text == "30%"
    assert b'<rect width="30.0" height="10">' in response.content
    assert crisis.cell("attendance_rate").text == "67%"
