"""Who may see or do what in accounts. Views call these first.

Outsiders (another organisation) get 404 and learn nothing; people in the organisation
without the capability get 403.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from accounts.models import CrisisLink, Invitation, Team, User


def org_admin_required(view):
    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not (request.user.is_org_admin and request.user.organisation_id):
            raise PermissionDenied("Only organisation admins can do this.")
        return view(request, *args, **kwargs)

    return wrapper


def _require_admin(user: User) -> None:
    if not (user.is_org_admin and user.organisation_id):
        raise PermissionDenied("Only organisation admins can do this.")


def get_person_for_admin(user: User, pk: int) -> User:
    _require_admin(user)
    return get_object_or_404(
        User.objects.select_related("organisation"), pk=pk, organisation_id=user.organisation_id
    )


def get_team_for_admin(user: User, pk: int) -> Team:
    _require_admin(user)
    return get_object_or_404(
        Team.objects.select_related("organisation"), pk=pk, organisation_id=user.organisation_id
    )


def get_invitation_for_admin(user: User, pk: int) -> Invitation:
    _require_admin(user)
    return get_object_or_404(
        Invitation.objects.select_related("organisation", "team"), pk=pk, organisation_id=user.organisation_id
    )


def get_crisis_link_for_admin(user: User, pk: int) -> CrisisLink:
    _require_admin(user)
    return get_object_or_404(
        CrisisLink.objects.select_related("organisation"), pk=pk, organisation_id=user.organisation_id
    )
