"""Who may see or do what with circles and their sessions.

Only people in a circle (members and circle facilitators) can see it; everyone else gets 404
and learns nothing, whatever their capabilities: an organisation admin or a manager is not
a reader of circles. Changing a circle needs its facilitator role (403 otherwise).
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404

from accounts.models import User
from circles.models import (
    AwayPeriod,
    Circle,
    CircleSession,
    Cohort,
    CoverRequest,
    Membership,
    SessionTemplate,
)
from config.prepared import PreparedQuery

# The viewer's active membership with its circle: every circle page's first read, compiled once
# (config/prepared.py).
_VIEWER_MEMBERSHIP = PreparedQuery(
    lambda circle_id, user_id, organisation_id: Membership.objects.select_related("circle__template").filter(
        circle_id=circle_id, user_id=user_id, left_at__isnull=True, circle__organisation_id=organisation_id
    )
)


def get_circle_for_user(user: User, pk: int, *, write: bool = False) -> Circle:
    """The circle with `viewer_membership`, for a person in it; 404 for everyone else.

    One query: the viewer's active membership with its circle, in the viewer's organisation.
    """
    if not (user.is_authenticated and user.organisation_id):
        raise Http404("No such circle.")
    try:
        # At most one active membership (a constraint).
        membership = _VIEWER_MEMBERSHIP.get(pk, user.pk, user.organisation_id)
    except Membership.DoesNotExist:
        raise Http404("No such circle.") from None
    if write and not membership.is_circle_facilitator:
        raise PermissionDenied("Only this circle's facilitators can change it.")
    circle = membership.circle
    circle.organisation = user.organisation  # the same one (filtered above): share the loaded object
    circle.viewer_membership = membership
    return circle


def get_session_for_user(user: User, pk: int, *, write: bool = False) -> CircleSession:
    session = CircleSession.objects.filter(pk=pk).only("id", "circle_id").first()
    if session is None:
        raise Http404("No such session.")
    circle = get_circle_for_user(user, session.circle_id, write=write)
    session = CircleSession.objects.select_related("facilitator").get(pk=pk)
    session.circle = circle
    return session


def require_facilitator(user: User) -> None:
    """Starting circles and shaping session templates is for people with the facilitator capability."""
    if not (user.is_facilitator and user.organisation_id):
        raise PermissionDenied("Only facilitators can do this.")


def get_template_for_user(user: User, pk: int, *, write: bool = False) -> SessionTemplate:
    """Templates that ship (organisation=None) are readable by every facilitator and changed by nobody."""
    template = SessionTemplate.objects.filter(
        Q(organisation=None) | Q(organisation_id=user.organisation_id), pk=pk
    ).first()
    if template is None or user.organisation_id is None:
        raise Http404("No such template.")
    require_facilitator(user)
    if write and template.organisation_id is None:
        raise PermissionDenied(
            "The templates that come with Alongside can't be changed. Make a copy instead."
        )
    return template


def get_membership_for_user(user: User, circle: Circle, pk: int) -> Membership:
    """A membership in a circle the viewer can already see (resolve the circle first)."""
    membership = circle.memberships.filter(pk=pk, left_at__isnull=True).select_related("user").first()
    if membership is None:
        raise Http404("No such member.")
    return membership


def get_cover_for_user(user: User, pk: int) -> CoverRequest:
    cover = CoverRequest.objects.filter(pk=pk).only("id", "session_id").first()
    if cover is None:
        raise Http404("No such cover request.")
    get_session_for_user(user, cover.session_id)
    return CoverRequest.objects.select_related("session__circle").get(pk=pk)


def get_away_for_user(user: User, pk: int) -> AwayPeriod:
    away = AwayPeriod.objects.filter(pk=pk, user_id=user.pk).first()
    if away is None:
        raise Http404("No such away dates.")
    return away


def require_cohort_planner(user: User) -> None:
    """Cohorts are set up by facilitators and organisation admins; managers never see who sits where."""
    if not (user.organisation_id and (user.is_facilitator or user.is_org_admin)):
        raise PermissionDenied("Only facilitators can plan cohorts.")


def get_cohort_for_user(user: User, pk: int) -> Cohort:
    """A cohort of the viewer's organisation (404 otherwise), for a facilitator or admin (403 otherwise)."""
    cohort = None
    if user.organisation_id:
        cohort = (
            Cohort.objects.filter(pk=pk, organisation_id=user.organisation_id)
            .select_related("template")
            .first()
        )
    if cohort is None:
        raise Http404("No such cohort.")
    require_cohort_planner(user)
    return cohort
