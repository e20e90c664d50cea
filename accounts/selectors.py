"""Reads for accounts pages, always scoped to the viewer's organisation, with their relations loaded."""

import hashlib

from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.models import AuditEntry, Invitation, LineManagementLink, Team, User


def people_for_admin(admin: User, *, search: str = "") -> QuerySet[User]:
    """Everyone in the admin's organisation, matching `search` on name or email if given."""
    people = (
        User.objects.filter(organisation_id=admin.organisation_id)
        .select_related("team")
        .prefetch_related("managed_teams")
        .order_by("display_name", "id")
    )
    search = search.strip()
    if search:
        people = people.filter(Q(display_name__icontains=search) | Q(email__icontains=search))
    return people


def pending_invitations_for_admin(admin: User) -> QuerySet[Invitation]:
    """Invitations not yet accepted or withdrawn, expired ones included so they can be resent."""
    return (
        Invitation.objects.filter(
            organisation_id=admin.organisation_id, accepted_at__isnull=True, revoked_at__isnull=True
        )
        .select_related("team", "invited_by")
        .annotate(
            is_expired=ExpressionWrapper(Q(expires_at__lte=timezone.now()), output_field=BooleanField())
        )
        .order_by("-created_at", "-id")
    )


def teams_for_organisation(organisation_id: int) -> QuerySet[Team]:
    return Team.objects.filter(organisation_id=organisation_id).order_by("name")


def teams_with_counts_for_admin(admin: User) -> QuerySet[Team]:
    return teams_for_organisation(admin.organisation_id).annotate(
        member_count=Count("members", distinct=True), manager_count=Count("managers", distinct=True)
    )


def colleagues_for_person(person: User) -> QuerySet[User]:
    """People who could line-manage `person`: the rest of their organisation."""
    return (
        User.objects.filter(organisation_id=person.organisation_id)
        .exclude(pk=person.pk)
        .order_by("display_name")
    )


def person_detail_for_admin(person: User) -> User:
    """`person` with their team, managed teams, line managers and reports loaded."""
    return (
        User.objects.select_related("team")
        .prefetch_related(
            "managed_teams",
            Prefetch("manager_links", queryset=LineManagementLink.objects.select_related("manager")),
            Prefetch("report_links", queryset=LineManagementLink.objects.select_related("report")),
        )
        .get(pk=person.pk)
    )


def audit_entries_for_admin(admin: User) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(organisation_id=admin.organisation_id).select_related("actor")


class InvitationUnavailable(Exception):
    """The link cannot be used. `reason` is one of REASONS; the page explains what to do next."""

    REASONS = ("unknown", "expired", "used", "revoked", "account-exists")

    def __init__(self, reason: str, invitation: Invitation | None = None):
        super().__init__(reason)
        self.reason = reason
        self.invitation = invitation


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_for_token(token: str) -> Invitation:
    """The usable invitation behind `token`, or `InvitationUnavailable` saying why it is not."""
    # One statement, so one snapshot: checked in two, a link accepted in between could look
    # unaccepted yet already have its account, and get the wrong explanation.
    invitation = (
        Invitation.objects.select_related("organisation", "team", "invited_by")
        .annotate(has_account=Exists(User.objects.filter(email=OuterRef("email"))))
        .filter(token_hash=token_hash(token))
        .first()
    )
    if invitation is None:
        raise InvitationUnavailable("unknown")
    if invitation.accepted_at is not None:
        raise InvitationUnavailable("used", invitation)
    if invitation.revoked_at is not None:
        raise InvitationUnavailable("revoked", invitation)
    if invitation.expires_at <= timezone.now():
        raise InvitationUnavailable("expired", invitation)
    if invitation.has_account:
        raise InvitationUnavailable("account-exists", invitation)
    return invitation
