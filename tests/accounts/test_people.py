import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import AuditEntry, LineManagementLink, Team, User
from accounts.services import (
    invitation_send,
    person_deactivate,
    person_reactivate,
    person_update_capabilities,
)
from tests.factories import PASSWORD, make_org, make_person, make_team

pytestmark = pytest.mark.django_db


def capabilities(person, **changes):
    current = {
        "is_member": person.is_member,
        "is_facilitator": person.is_facilitator,
        "is_org_admin": person.is_org_admin,
        "managed_teams": list(person.managed_teams.all()),
        "team": person.team,
        "line_managers": [link.manager for link in person.manager_links.all()],
    }
    current.update(changes)
    return current


def test_admin_changes_capabilities_team_managed_teams_and_line_managers(people):
    person_update_capabilities(
        actor=people.admin,
        person=people.member,
        **capabilities(
            people.member,
            is_facilitator=True,
            team=people.other_team,
            managed_teams=[people.team],
            line_managers=[people.manager],
        ),
    )
    member = type(people.member).objects.get(pk=people.member.pk)
    assert member.is_facilitator and member.team == people.other_team
    assert list(member.managed_teams.all()) == [people.team]
    assert list(LineManagementLink.objects.filter(report=member).values_list("manager", flat=True)) == [
        people.manager.pk
    ]
    entry = AuditEntry.objects.get(action="person.capabilities_changed")
    assert entry.actor == people.admin and entry.subject == member.email
    assert entry.data["is_facilitator"] == {"from": False, "to": True}

    person_update_capabilities(
        actor=people.admin, person=member, **capabilities(member, line_managers=[people.facilitator])
    )
    assert list(LineManagementLink.objects.filter(report=member).values_list("manager", flat=True)) == [
        people.facilitator.pk
    ]


def test_the_last_admin_cannot_remove_their_own_admin_capability(people):
    with pytest.raises(ValidationError) as error:
        person_update_capabilities(
            actor=people.admin, person=people.admin, **capabilities(people.admin, is_org_admin=False)
        )
    assert "You are the only admin" in str(error.value.message_dict["is_org_admin"])
    people.admin.refresh_from_db()
    assert people.admin.is_org_admin


def test_an_admin_can_step_down_when_another_active_admin_remains(people):
    make_person(people.org, "Second Admin", is_org_admin=True)
    person_update_capabilities(
        actor=people.admin, person=people.admin, **capabilities(people.admin, is_org_admin=False)
    )
    people.admin.refresh_from_db()
    assert not people.admin.is_org_admin


def test_a_deactivated_admin_does_not_count_as_the_remaining_admin(people):
    make_person(people.org, "Gone Admin", is_org_admin=True, is_active=False)
    with pytest.raises(ValidationError):
        person_update_capabilities(
            actor=people.admin, person=people.admin, **capabilities(people.admin, is_org_admin=False)
        )


def test_teams_and_line_managers_must_be_in_the_same_organisation(people):
    foreign_team = make_team(people.elsewhere, "Foreign")
    with pytest.raises(ValidationError) as error:
        person_update_capabilities(
            actor=people.admin,
            person=people.member,
            **capabilities(people.member, managed_teams=[foreign_team], line_managers=[people.outsider]),
        )
    assert set(error.value.message_dict) == {"managed_teams", "line_managers"}
    with pytest.raises(ValidationError) as error:
        person_update_capabilities(
            actor=people.admin, person=people.member, **capabilities(people.member, team=foreign_team)
        )
    assert "team" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        person_update_capabilities(
            actor=people.admin,
            person=people.member,
            **capabilities(people.member, line_managers=[people.member]),
        )
    assert "their own line manager" in str(error.value)
    assert not LineManagementLink.objects.exists()


def test_deactivated_person_cannot_sign_in_and_their_open_session_ends(client, people):
    client.post(reverse("accounts:login"), {"username": people.member.email, "password": PASSWORD})
    assert client.get(reverse("home")).status_code == 200

    person_deactivate(actor=people.admin, person=people.member)

    assert client.get(reverse("home")).status_code == 302
    fresh = Client()
    response = fresh.post(reverse("accounts:login"), {"username": people.member.email, "password": PASSWORD})
    assert "_auth_user_id" not in fresh.session
    assert "did not match an active account" in response.content.decode()
    assert type(people.member).objects.filter(pk=people.member.pk).exists()

    person_reactivate(actor=people.admin, person=people.member)
    fresh.post(reverse("accounts:login"), {"username": people.member.email, "password": PASSWORD})
    assert int(fresh.session["_auth_user_id"]) == people.member.pk
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "person.deactivated",
        "person.reactivated",
    ]


def test_an_admin_cannot_deactivate_themselves(people):
    with pytest.raises(ValidationError, match="can't deactivate yourself"):
        person_deactivate(actor=people.admin, person=people.admin)
    people.admin.refresh_from_db()
    assert people.admin.is_active


def test_person_page_saves_changes_and_shows_them(client_for, people):
    client = client_for(people.admin)
    url = reverse("accounts:person", args=[people.member.pk])
    response = client.post(
        url,
        {
            "is_member": "on",
            "is_facilitator": "on",
            "team": people.team.pk,
            "managed_teams": [people.other_team.pk],
            "line_managers": [people.manager.pk],
        },
    )
    assert response.status_code == 302 and response.url == url
    people.member.refresh_from_db()
    assert people.member.is_facilitator and list(people.member.managed_teams.all()) == [people.other_team]
    page = client.get(url).content.decode()
    assert "Saved the changes for Alice Member" in page


def test_person_page_shows_the_last_admin_error_beside_the_field(client_for, people):
    client = client_for(people.admin)
    response = client.post(reverse("accounts:person", args=[people.admin.pk]), {"is_member": "on"})
    assert response.status_code == 200
    assert "You are the only admin" in response.content.decode()


def test_person_page_deactivate_and_reactivate_buttons(client_for, people):
    client = client_for(people.admin)
    response = client.post(reverse("accounts:person-deactivate", args=[people.member.pk]))
    assert response.status_code == 302
    people.member.refresh_from_db()
    assert not people.member.is_active
    client.post(reverse("accounts:person-reactivate", args=[people.member.pk]))
    people.member.refresh_from_db()
    assert people.member.is_active


def test_deactivating_yourself_from_the_page_shows_a_message(client_for, people):
    client = client_for(people.admin)
    response = client.post(reverse("accounts:person-deactivate", args=[people.admin.pk]), follow=True)
    assert "can&#x27;t deactivate yourself" in response.content.decode()


def test_people_page_lists_searches_and_shows_pending_invitations(client_for, people):
    invitation_send(organisation=people.org, invited_by=people.admin, email="waiting@example.org")
    client = client_for(people.admin)
    page = client.get(reverse("accounts:people")).content.decode()
    assert "Alice Member" in page and "Mo Manager" in page and "Otto Outsider" not in page
    assert "waiting@example.org" in page and "Manages Crisis team" in page

    page = client.get(reverse("accounts:people"), {"q": "fran"}).content.decode()
    assert "Fran Facilitator" in page and "Alice Member" not in page
    page = client.get(reverse("accounts:people"), {"q": people.member.email.upper()}).content.decode()
    assert "Alice Member" in page and "Fran Facilitator" not in page
    page = client.get(reverse("accounts:people"), {"q": "nobody-like-this"}).content.decode()
    assert "Nobody's name or email contains" in page


def test_people_page_paginates_by_25(client_for, people):
    User.objects.bulk_create(
        User(organisation=people.org, email=f"zed{n}@example.org", display_name=f"Zed {n:02d}")
        for n in range(30)
    )
    client = client_for(people.admin)
    first = client.get(reverse("accounts:people")).content.decode()
    assert "Page 1 of 2" in first and "?page=2" in first
    second = client.get(reverse("accounts:people"), {"page": 2}).content.decode()
    assert "Zed 29" in second and "Alice Member" not in second


def _organisation_with(size: int, invitations: int):
    """An admin plus `size - 1` others, each in a team and managing two; built in bulk to stay quick."""
    organisation = make_org(f"Trust of {size}")
    admin = make_person(
        organisation, "Their Admin", is_org_admin=True, managed_teams=[make_team(organisation)]
    )
    teams = Team.objects.bulk_create(
        Team(organisation=organisation, name=f"Bulk team {n}") for n in range(size * 2)
    )
    others = User.objects.bulk_create(
        User(
            organisation=organisation, email=f"p{n}.{size}@example.org", display_name=f"P {n}", team=teams[n]
        )
        for n in range(size - 1)
    )
    User.managed_teams.through.objects.bulk_create(
        User.managed_teams.through(user_id=person.pk, team_id=teams[-1 - n - k].pk)
        for n, person in enumerate(others)
        for k in (0, size)
    )
    for n in range(invitations):
        invitation_send(organisation=organisation, invited_by=admin, email=f"i{n}@example.org", team=teams[n])
    return admin


def test_people_page_query_count_is_the_same_with_3_and_with_60_people(client_for, django_assert_num_queries):
    client = client_for(_organisation_with(3, invitations=1))
    with CaptureQueriesContext(connection) as baseline:
        assert client.get(reverse("accounts:people")).status_code == 200

    client = client_for(_organisation_with(60, invitations=40))
    with django_assert_num_queries(len(baseline)):
        page = client.get(reverse("accounts:people"))
    content = page.content.decode()
    assert "Page 1 of 3" in content and "Page 1 of 2" in content
    assert content.count("Manages Bulk team") == 25 * 2


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["line_managers", "managed_teams"])
def test_an_id_too_large_for_any_column_is_an_invalid_choice_not_a_server_error(field):
    """SQLite raised OverflowError on `id IN (2**63)`: a 500 on the default database."""
    from accounts.forms import PersonForm

    organisation = make_org()
    person = make_person(organisation)
    form = PersonForm(
        {"is_member": "on", field: [str(2**63)]},
        person=person,
        teams=Team.objects.filter(organisation=organisation),
        colleagues=User.objects.filter(organisation=organisation).exclude(pk=person.pk),
    )
    assert not form.is_valid()
    assert form.errors.as_data()[field][0].code == "invalid_pk_value"
