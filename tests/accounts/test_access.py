"""Every accounts admin view, for every persona: who gets in, who gets 403, 404, 405 or the sign-in page."""

import pytest
from django.urls import reverse

from accounts.models import CrisisLink, Invitation, Team
from accounts.services import invitation_send

pytestmark = pytest.mark.django_db

# (url name, which object of our organisation it takes, the methods it answers)
VIEWS = [
    ("accounts:people", None, {"GET"}),
    ("accounts:organisation", None, {"GET", "POST"}),
    ("accounts:audit", None, {"GET"}),
    ("accounts:invitation-create", None, {"POST"}),
    ("accounts:invitation-import", None, {"POST"}),
    ("accounts:team-create", None, {"POST"}),
    ("accounts:crisis-link-create", None, {"POST"}),
    ("accounts:person", "person", {"GET", "POST"}),
    ("accounts:person-deactivate", "person", {"POST"}),
    ("accounts:person-reactivate", "person", {"POST"}),
    ("accounts:invitation-revoke", "invitation", {"POST"}),
    ("accounts:invitation-resend", "invitation", {"POST"}),
    ("accounts:team-rename", "team", {"POST"}),
    ("accounts:team-delete", "team", {"POST"}),
    ("accounts:crisis-link-delete", "crisis_link", {"POST"}),
]
VIEW_IDS = [name.split(":")[1] for name, _, _ in VIEWS]


@pytest.fixture
def targets(people):
    return {
        "person": people.member,
        "invitation": invitation_send(
            organisation=people.org, invited_by=people.admin, email="new@example.org"
        ),
        "team": Team.objects.create(organisation=people.org, name="Spare team"),
        "crisis_link": CrisisLink.objects.create(organisation=people.org, label="Helpline", phone="111"),
    }


def url_for(name, target_kind, targets):
    return reverse(name, args=[targets[target_kind].pk]) if target_kind else reverse(name)


def call(client, method, url):
    return getattr(client, method.lower())(url)


@pytest.mark.parametrize(("name", "target", "methods"), VIEWS, ids=VIEW_IDS)
def test_anonymous_visitor_is_sent_to_sign_in(client, targets, name, target, methods):
    url = url_for(name, target, targets)
    for method in methods:
        response = call(client, method, url)
        assert response.status_code == 302, method
        assert response.url.startswith(reverse("accounts:login")), method


@pytest.mark.parametrize("persona", ["member", "facilitator", "manager"])
@pytest.mark.parametrize(("name", "target", "methods"), VIEWS, ids=VIEW_IDS)
def test_person_without_the_admin_capability_gets_403(
    client_for, people, targets, persona, name, target, methods
):
    client = client_for(getattr(people, persona))
    url = url_for(name, target, targets)
    for method in methods:
        assert call(client, method, url).status_code == 403, method


@pytest.mark.parametrize(
    ("name", "target", "methods"),
    [v for v in VIEWS if v[1]],
    ids=[i for i, v in zip(VIEW_IDS, VIEWS, strict=True) if v[1]],
)
def test_admin_of_another_organisation_gets_404_and_changes_nothing(
    client_for, people, targets, name, target, methods
):
    client = client_for(people.outsider)
    url = url_for(name, target, targets)
    for method in methods:
        assert call(client, method, url).status_code == 404, method
    people.member.refresh_from_db()
    assert people.member.is_active
    assert Invitation.objects.get(pk=targets["invitation"].pk).revoked_at is None
    assert Team.objects.filter(pk=targets["team"].pk).exists()
    assert CrisisLink.objects.filter(pk=targets["crisis_link"].pk).exists()


@pytest.mark.parametrize("name", ["accounts:people", "accounts:organisation", "accounts:audit"])
def test_admin_of_another_organisation_sees_only_their_own_on_list_pages(client_for, people, targets, name):
    page = client_for(people.outsider).get(reverse(name)).content.decode()
    assert "Elsewhere Health" in page or "Otto Outsider" in page or "Nothing has been recorded" in page
    for ours in ("Alice Member", "new@example.org", "Spare team", "Helpline", "Riverside Trust"):
        assert ours not in page


@pytest.mark.parametrize(("name", "target", "methods"), VIEWS, ids=VIEW_IDS)
def test_wrong_method_gets_405(client_for, people, targets, name, target, methods):
    client = client_for(people.admin)
    url = url_for(name, target, targets)
    for method in {"GET", "POST", "PUT", "DELETE"} - methods:
        assert call(client, method, url).status_code == 405, method


@pytest.mark.parametrize(("name", "target", "methods"), VIEWS, ids=VIEW_IDS)
def test_admin_reaches_every_view(client_for, people, targets, name, target, methods):
    client = client_for(people.admin)
    url = url_for(name, target, targets)
    for method in sorted(methods):
        assert call(client, method, url).status_code in (200, 302), method


def test_nav_shows_people_and_organisation_to_admins_only(client_for, people):
    admin_page = client_for(people.admin).get(reverse("home")).content.decode()
    assert reverse("accounts:people") in admin_page and reverse("accounts:organisation") in admin_page
    member_page = client_for(people.member).get(reverse("home")).content.decode()
    assert reverse("accounts:people") not in member_page


def test_invitation_page_answers_get_and_post_only(client):
    assert client.put(reverse("accounts:invitation-accept", args=["whatever"])).status_code == 405
    assert client.get(reverse("accounts:invitation-accept", args=["whatever"])).status_code == 404
