"""Who may see which insights. Views call these first.

People outside the organisation (or asking for a group or month that is not one of its fixed
slices) get 404; people in it without a manager's or admin's capability get 403. Everyone in a
team may see what their managers see for it (`get_member_view_for_user`).
"""

from datetime import date, datetime

from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.models import User
from insights import privacy, selectors


def _scope(user: User) -> selectors.Scope:
    if not user.organisation_id:
        raise Http404("Insights belong to an organisation.")
    return selectors.scope_for_user(user)


def _require_viewer(scope: selectors.Scope) -> None:
    if not scope.is_viewer:
        raise PermissionDenied("Only managers and organisation admins see insights.")


def get_insights_for_user(user: User, month: str | None = None) -> tuple[selectors.Scope, date]:
    """The person's scope and the month asked for ("2025-03"; None for the latest complete one)."""
    scope = _scope(user)
    _require_viewer(scope)
    if month is None:
        return scope, scope.default_month
    try:
        wanted = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise Http404("Not a month.") from None
    if wanted not in scope.months:
        raise Http404("Insights cover the last twelve months only.")
    return scope, wanted


def get_group_for_user(user: User, key: str) -> tuple[selectors.Scope, privacy.Group]:
    scope = _scope(user)
    group = scope.group(key)
    if group is None:
        raise Http404("No such group.")
    _require_viewer(scope)
    if group not in scope.visible:
        raise PermissionDenied("This group is not one of your teams.")
    return scope, group


def get_member_view_for_user(user: User) -> tuple[selectors.Scope, privacy.Group | None]:
    """The group a manager sees the person's team in; None if the team is too small to be shown."""
    scope = _scope(user)
    return scope, scope.group_for_team(user.team_id) if user.team_id else None
