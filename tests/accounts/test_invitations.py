import re
import threading
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import AuditEntry, Invitation, User
from accounts.selectors import InvitationUnavailable, token_hash
from accounts.services import invitation_accept, invitation_resend, invitation_revoke, invitation_send
from tests.factories import make_team

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a gentle river at dusk"


def send(people, email="new.person@example.org", **fields):
    return invitation_send(organisation=people.org, invited_by=people.admin, email=email, **fields)


def link_from_last_email() -> str:
    match = re.search(r"https?://\S+/accounts/invitation/[\w-]+/", mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(0)


def token_from(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[1]


def accept_form(**overrides):
    data = {
        "display_name": "Nia New",
        "pronouns": "she/her",
        "time_zone": "Europe/Paris",
        "password": NEW_PASSWORD,
        "password_again": NEW_PASSWORD,
    }
    data.update(overrides)
    return data


def test_invitation_lifecycle_from_email_to_signed_in(client, people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invitation = send(people, email="New.Person@Example.org", team=people.team, is_facilitator=True)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@example.org"]
    assert "Ada Admin invited you" in message.subject
    link = link_from_last_email()
    assert link.startswith(settings.SITE_URL + "/accounts/invitation/")
    assert link in message.alternatives[0][0]
    token = token_from(link)
    assert invitation.token_hash == token_hash(token) and token not in invitation.token_hash

    page = client.get(link.removeprefix(settings.SITE_URL))
    assert page.status_code == 200
    assert "new.person@example.org" in page.content.decode()
    assert page.headers["Referrer-Policy"] == "no-referrer"

    response = client.post(link.removeprefix(settings.SITE_URL), accept_form())
    assert response.status_code == 302 and response.url == reverse("home")
    user = User.objects.get(email="new.person@example.org")
    assert int(client.session["_auth_user_id"]) == user.pk
    assert (user.display_name, user.pronouns, user.time_zone) == ("Nia New", "she/her", "Europe/Paris")
    assert user.organisation == people.org and user.team == people.team
    assert user.is_facilitator and user.is_member and not user.is_org_admin
    assert user.check_password(NEW_PASSWORD)
    invitation.refresh_from_db()
    assert invitation.accepted_by == user and invitation.accepted_at is not None
    assert set(AuditEntry.objects.values_list("action", flat=True)) == {
        "invitation.sent",
        "invitation.accepted",
    }


def test_used_link_gets_a_clear_page_pointing_to_sign_in(client, people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send(people)
    url = link_from_last_email().removeprefix(settings.SITE_URL)
    client.post(url, accept_form())
    client.logout()

    response = client.get(url)
    assert response.status_code == 410
    content = response.content.decode()
    assert "already been used" in content and reverse("accounts:login") in content
    assert client.post(url, accept_form()).status_code == 410
    assert User.objects.filter(email="new.person@example.org").count() == 1


def test_expired_link_gets_a_clear_page_and_creates_nothing(
    client, people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        send(people)
    url = link_from_last_email().removeprefix(settings.SITE_URL)
    later = timezone.now() + timedelta(days=settings.INVITATION_VALID_DAYS, minutes=1)
    with time_machine.travel(later):
        response = client.post(url, accept_form())
    assert response.status_code == 410
    assert "has run out" in response.content.decode()
    assert "Ada Admin" in response.content.decode()
    assert not User.objects.filter(email="new.person@example.org").exists()


def test_tampered_link_gets_a_clear_page_not_a_bare_404(client, people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send(people)
    url = link_from_last_email().removeprefix(settings.SITE_URL)
    tampered = url[:-3] + ("A" if url[-3] != "A" else "B") + url[-2:]
    response = client.get(tampered)
    assert response.status_code == 404
    assert "We don't recognise this invitation link" in response.content.decode()
    assert client.post(tampered, accept_form()).status_code == 404
    assert not User.objects.filter(email="new.person@example.org").exists()


def test_revoked_link_gets_a_clear_page(client, people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invitation = send(people)
    url = link_from_last_email().removeprefix(settings.SITE_URL)
    invitation_revoke(actor=people.admin, invitation=invitation)
    response = client.get(url)
    assert response.status_code == 410
    assert "replaced or withdrawn" in response.content.decode()
    assert AuditEntry.objects.filter(action="invitation.revoked", subject=invitation.email).exists()


def test_second_accept_of_the_same_token_creates_no_second_account(
    people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        send(people)
    token = token_from(link_from_last_email())
    fields = {"password": NEW_PASSWORD, "display_name": "Nia", "pronouns": "", "time_zone": ""}
    first = invitation_accept(token=token, **fields)
    with pytest.raises(InvitationUnavailable) as problem:
        invitation_accept(token=token, **fields)
    assert problem.value.reason == "used"
    assert list(User.objects.filter(email="new.person@example.org")) == [first]


def test_claim_is_conditional_so_a_stale_reader_cannot_accept_twice(
    people, monkeypatch, django_capture_on_commit_callbacks
):
    """Both submits passed the first check before either claimed: the UPDATE decides, once."""
    with django_capture_on_commit_callbacks(execute=True):
        invitation = send(people)
    token = token_from(link_from_last_email())
    fields = {"password": NEW_PASSWORD, "display_name": "Nia", "pronouns": "", "time_zone": ""}
    stale = Invitation.objects.select_related("organisation", "team").get(pk=invitation.pk)
    invitation_accept(token=token, **fields)

    real_lookup = services.invitation_for_token
    lookups = []

    def stale_first_lookup(value):
        lookups.append(value)
        return stale if len(lookups) == 1 else real_lookup(value)

    monkeypatch.setattr(services, "invitation_for_token", stale_first_lookup)
    with pytest.raises(InvitationUnavailable) as problem:
        invitation_accept(token=token, **fields)
    assert problem.value.reason == "used"
    assert User.objects.filter(email="new.person@example.org").count() == 1


def test_reinviting_a_pending_email_revokes_the_old_link(people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = send(people)
        second = send(people, display_name="Nia")
    first.refresh_from_db()
    assert first.revoked_at is not None and second.revoked_at is None
    assert len(mail.outbox) == 2


def test_resend_sends_a_new_link_and_the_old_one_stops(client, people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invitation = send(people, team=people.team)
    old_url = link_from_last_email().removeprefix(settings.SITE_URL)
    with django_capture_on_commit_callbacks(execute=True):
        fresh = invitation_resend(actor=people.admin, invitation=invitation)
    new_url = link_from_last_email().removeprefix(settings.SITE_URL)
    assert new_url != old_url and fresh.team == people.team
    assert client.get(old_url).status_code == 410
    assert client.get(new_url).status_code == 200
    assert AuditEntry.objects.filter(action="invitation.resent").count() == 1


def test_inviting_an_email_that_already_has_an_account_is_a_clear_error(people):
    with pytest.raises(ValidationError) as error:
        send(people, email=people.member.email.upper())
    assert "already has an Alongside account" in str(error.value.message_dict["email"])
    assert not Invitation.objects.exists()


def test_email_is_sent_only_when_the_invitation_is_committed(people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        send(people)
    assert mail.outbox == [] and len(callbacks) == 1


def test_weak_or_mismatched_password_is_refused_with_the_form_kept(
    client, people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        send(people)
    url = link_from_last_email().removeprefix(settings.SITE_URL)
    response = client.post(url, accept_form(password="short", password_again="short"))
    assert response.status_code == 200
    assert "too short" in response.content.decode()
    assert 'value="Nia New"' in response.content.decode()
    response = client.post(url, accept_form(password_again="something else entirely"))
    assert "The two passwords are different" in response.content.decode()
    response = client.post(url, accept_form(time_zone="Mars/Olympus"))
    assert "is not a time zone we know" in response.content.decode()
    assert not User.objects.filter(email="new.person@example.org").exists()


def test_admin_invites_from_the_people_page(client_for, people, django_capture_on_commit_callbacks):
    client = client_for(people.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("accounts:invitation-create"),
            {
                "email": "sam@example.org",
                "display_name": "Sam",
                "team": people.team.pk,
                "is_facilitator": "on",
            },
        )
    assert response.status_code == 302 and response.url == reverse("accounts:people")
    invitation = Invitation.objects.get(email="sam@example.org")
    assert invitation.team == people.team and invitation.is_facilitator and not invitation.is_org_admin
    assert invitation.organisation == people.org and invitation.invited_by == people.admin
    assert len(mail.outbox) == 1
    page = client.get(reverse("accounts:people")).content.decode()
    assert "sam@example.org" in page and "Invitation sent to sam@example.org" in page


def test_invite_form_shows_a_clear_error_for_an_existing_account(client_for, people):
    response = client_for(people.admin).post(
        reverse("accounts:invitation-create"), {"email": people.member.email}
    )
    assert response.status_code == 200
    assert "already has an Alongside account" in response.content.decode()


def test_invite_form_refuses_a_team_from_another_organisation(client_for, people):
    foreign = make_team(people.elsewhere, "Foreign team")
    response = client_for(people.admin).post(
        reverse("accounts:invitation-create"), {"email": "x@example.org", "team": foreign.pk}
    )
    assert response.status_code == 200 and not Invitation.objects.exists()


def test_admin_revokes_and_resends_from_the_people_page(
    client_for, people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation = send(people)
    client = client_for(people.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:invitation-resend", args=[invitation.pk]))
    assert response.status_code == 302 and len(mail.outbox) == 2
    fresh = Invitation.objects.get(email=invitation.email, revoked_at__isnull=True)
    response = client.post(reverse("accounts:invitation-revoke", args=[fresh.pk]))
    assert response.status_code == 302
    fresh.refresh_from_db()
    assert fresh.revoked_at is not None


def test_link_for_an_email_that_got_an_account_elsewhere_says_so(
    client, people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        send(people, email="twice@example.org")
    ours = link_from_last_email().removeprefix(settings.SITE_URL)
    with django_capture_on_commit_callbacks(execute=True):
        invitation_send(organisation=people.elsewhere, invited_by=people.outsider, email="twice@example.org")
    theirs = token_from(link_from_last_email())
    invitation_accept(token=theirs, password=NEW_PASSWORD, display_name="Twice", pronouns="", time_zone="")

    response = client.post(ours, accept_form())
    assert response.status_code == 409
    assert "You already have an account" in response.content.decode()
    assert User.objects.get(email="twice@example.org").organisation == people.elsewhere


def test_audit_records_the_actor_and_their_organisation(people):
    entry = services.audit(actor=people.admin, action="thing.done", subject="x" * 300, data={"n": 1})
    assert (entry.organisation, entry.actor, len(entry.subject), entry.data) == (
        people.org,
        people.admin,
        200,
        {"n": 1},
    )
    system = services.audit(actor=None, action="retention.applied", organisation=people.org)
    assert system.organisation == people.org and system.actor is None
    with pytest.raises(ValueError, match="needs an organisation"):
        services.audit(actor=None, action="thing.done")


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_accepts_create_exactly_one_account(people, django_capture_on_commit_callbacks):
    """Two threads, two database connections, one link: the row lock and conditional UPDATE let one win."""
    with django_capture_on_commit_callbacks(execute=True):
        send(people)
    token = token_from(link_from_last_email())
    start = threading.Barrier(2)
    outcomes = []

    def accept():
        try:
            start.wait(timeout=10)
            invitation_accept(
                token=token, password=NEW_PASSWORD, display_name="Nia", pronouns="", time_zone=""
            )
            outcomes.append("accepted")
        except InvitationUnavailable as problem:
            outcomes.append(problem.reason)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["accepted", "used"]
    assert User.objects.filter(email="new.person@example.org").count() == 1
