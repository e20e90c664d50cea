"""Who may see or do what with circles and their sessions.

Only people in a circle (members and circle facilitators) can see it; everyone else gets 404
and learns nothing, whatever their capabilities: an organisation admin or a manager is not
a reader of circles. Changing a circle needs its facilitator role (403 otherwise).
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.models import User
from circles.models import Circle, CircleSession, Membership


def active_membership(user: User, circle_id: int) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(circle_id=circle_id, user=user, left_at__isnull=True).first()


def get_circle_for_user(user: User, pk: int, *, write: bool = False) -> Circle:
    circle = (
        Circle.objects.filter(pk=pk, organisation_id=user.organisation_id).select_related("template").first()
    )
    membership = active_membership(user, pk) if circle else None
    if membership is None:
        raise Http404("No such circle.")
    if write and not membership.is_circle_facilitator:
        raise PermissionDenied("Only this circle's facilitators can change it.")
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
