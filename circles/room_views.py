"""The live session room page. The room itself runs over the socket (circles.consumers)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from circles import access, live


@login_required
@require_GET
def session_room(request: HttpRequest, pk: int) -> HttpResponse:
    session = access.get_session_for_user(request.user, pk)
    circle = session.circle
    opens_at, closes_at = live.join_window(session)
    context = {
        "session": session,
        "circle": circle,
        "is_open": live.room_is_open(session, timezone.now()),
        "opens_at": opens_at,
        "closes_at": closes_at,
        "organisation": circle.organisation,
        "rounds": list(circle.template.rounds.all()),
        "viewer_zone": request.user.zone,
    }
    return render(request, "circles/room.html", context)
