import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import AuditEntry, CrisisLink, Team
from accounts.services import (
    THRESHOLD_MESSAGE,
    crisis_link_add,
    crisis_link_remove,
    organisation_update,
    team_create,
    team_delete,
    team_rename,
)

pytestmark = pytest.mark.django_db


def settings_form(**overrides):
    data = {
        "name": "Riverside Health Trust",
        "time_zone": "Europe/Dublin",
        "anonymity_threshold": 6,
        "chat_retention_days": 2,
        "reflection_retention_days": "",
        "crisis_text": "You are not alone.",
    }
    data.update(overrides)
    return data


def test_admin_updates_organisation_settings(client_for, people):
    response = client_for(people.admin).post(reverse("accounts:organisation"), settings_form())
    assert response.status_code == 302 and response.url == reverse("accounts:organisation")
    people.org.refresh_from_db()
    assert people.org.name == "Riverside Health Trust" and people.org.time_zone == "Europe/Dublin"
    assert (people.org.anonymity_threshold, people.org.chat_retention_days) == (6, 2)
    assert people.org.reflection_retention_days is None and people.org.crisis_text == "You are not alone."
    entry = AuditEntry.objects.get(action="organisation.updated")
    assert entry.data["anonymity_threshold"] == {"from": 5, "to": 6}


def test_threshold_of_2_is_refused_with_a_clear_message_and_the_form_kept(client_for, people):
    response = client_for(people.admin).post(
        reverse("accounts:organisation"), settings_form(anonymity_threshold=2)
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "The threshold can&#x27;t be lower than 3" in page
    assert 'value="Riverside Health Trust"' in page
    people.org.refresh_from_db()
    assert people.org.anonymity_threshold == 5 and people.org.name == "Riverside Trust"


def test_service_refuses_threshold_below_3_and_unknown_time_zone(people):
    with pytest.raises(ValidationError) as error:
        organisation_update(
            actor=people.admin,
            organisation=people.org,
            name="X",
            time_zone="Atlantis/Capital",
            anonymity_threshold=2,
            chat_retention_days=-1,
            reflection_retention_days=0,
            crisis_text="",
        )
    errors = error.value.message_dict
    assert errors["anonymity_threshold"] == [THRESHOLD_MESSAGE]
    assert set(errors) == {
        "anonymity_threshold",
        "time_zone",
        "chat_retention_days",
        "reflection_retention_days",
    }


def test_non_numbers_in_settings_are_form_errors_not_500s(client_for, people):
    response = client_for(people.admin).post(
        reverse("accounts:organisation"), settings_form(anonymity_threshold="five", chat_retention_days="")
    )
    assert response.status_code == 200
    assert "Enter a whole number" in response.content.decode()


def test_teams_are_created_renamed_and_deleted_with_unique_names(people):
    team = team_create(actor=people.admin, organisation=people.org, name="  Night   shift ")
    assert team.name == "Night shift"
    with pytest.raises(ValidationError, match="already a team called"):
        team_create(actor=people.admin, organisation=people.org, name="night SHIFT")
    with pytest.raises(ValidationError, match="already a team called"):
        team_rename(actor=people.admin, team=team, name="Crisis Team")
    team_rename(actor=people.admin, team=team, name="Evening shift")
    team.refresh_from_db()
    assert team.name == "Evening shift"

    team_delete(actor=people.admin, team=people.team)
    people.member.refresh_from_db()
    assert people.member.team is None and not people.manager.managed_teams.exists()
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "team.created",
        "team.renamed",
        "team.deleted",
    ]


def test_a_team_name_may_repeat_across_organisations(people):
    team_create(actor=people.outsider, organisation=people.elsewhere, name="Crisis team")
    assert Team.objects.filter(name="Crisis team").count() == 2


def test_team_pages_add_rename_and_remove(client_for, people):
    client = client_for(people.admin)
    response = client.post(reverse("accounts:team-create"), {"new-team-name": "Outreach"})
    assert response.status_code == 302
    outreach = Team.objects.get(organisation=people.org, name="Outreach")
    response = client.post(
        reverse("accounts:team-rename", args=[outreach.pk]), {f"team-{outreach.pk}-name": ""}
    )
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    response = client.post(
        reverse("accounts:team-rename", args=[outreach.pk]), {f"team-{outreach.pk}-name": "Community team"}
    )
    assert response.status_code == 200 and "already a team called" in response.content.decode()
    client.post(
        reverse("accounts:team-rename", args=[outreach.pk]), {f"team-{outreach.pk}-name": "Street team"}
    )
    outreach.refresh_from_db()
    assert outreach.name == "Street team"
    client.post(reverse("accounts:team-delete", args=[outreach.pk]))
    assert not Team.objects.filter(pk=outreach.pk).exists()
    response = client.post(reverse("accounts:team-create"), {"new-team-name": "crisis TEAM"})
    assert response.status_code == 200 and "already a team called" in response.content.decode()


def test_crisis_links_are_added_and_removed(client_for, people):
    client = client_for(people.admin)
    response = client.post(
        reverse("accounts:crisis-link-create"), {"label": "Samaritans", "phone": "116 123", "url": ""}
    )
    assert response.status_code == 302
    link = CrisisLink.objects.get(organisation=people.org)
    assert (link.label, link.phone) == ("Samaritans", "116 123")
    assert "Samaritans" in client.get(reverse("accounts:organisation")).content.decode()
    client.post(reverse("accounts:crisis-link-delete", args=[link.pk]))
    assert not CrisisLink.objects.exists()


def test_a_crisis_link_needs_a_phone_or_web_address(client_for, people):
    response = client_for(people.admin).post(reverse("accounts:crisis-link-create"), {"label": "Helpline"})
    assert response.status_code == 200
    assert "Give a web address, a phone number, or both." in response.content.decode()
    assert not CrisisLink.objects.exists()


def test_crisis_link_services_are_audited(people):
    link = crisis_link_add(
        actor=people.admin, organisation=people.org, label="Shout", url="https://giveusashout.org"
    )
    crisis_link_remove(actor=people.admin, link=link)
    assert list(AuditEntry.objects.order_by("id").values_list("action", "subject")) == [
        ("crisis_link.added", "Shout"),
        ("crisis_link.removed", "Shout"),
    ]


def test_audit_log_page_shows_entries_of_this_organisation_only(client_for, people):
    team_create(actor=people.admin, organisation=people.org, name="Visible team")
    team_create(actor=people.outsider, organisation=people.elsewhere, name="Hidden team")
    page = client_for(people.admin).get(reverse("accounts:audit")).content.decode()
    assert "team.created" in page and "Visible team" in page and "Hidden team" not in page


def test_audit_log_paginates_with_a_fixed_query_count(client_for, people, django_assert_num_queries):
    AuditEntry.objects.bulk_create(
        AuditEntry(organisation=people.org, actor=people.admin, action="test.done", subject=str(n))
        for n in range(2)
    )
    client = client_for(people.admin)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("accounts:audit"))
    AuditEntry.objects.bulk_create(
        AuditEntry(organisation=people.org, actor=people.member, action="test.done", subject=str(n))
        for n in range(120)
    )
    with django_assert_num_queries(len(few)):
        response = client.get(reverse("accounts:audit"), {"page": 2})
    assert "Page 2 of 3" in response.content.decode()
