"""The authorisation matrix: what each persona gets from each route. One place, data only.

Columns, in order: anonymous, someone from another organisation (an admin and facilitator there),
a member of another circle in this organisation, a member of the circle, the session's facilitator
of the day (a member of the circle without the facilitator capability), the circle's facilitator,
a manager of the member's team, an organisation admin (in no circle).

Outcomes: a status code, or LOGIN for a redirect to the sign-in page that asks to come back. GET
routes are asked with GET; POST-only routes with an empty POST (rolled back, so an allowed persona's
302 or 200 shows it got through). For a route that takes both, a persona refused the GET is also
refused the POST, and `post=` gives the POST's own outcomes where they differ (the prompt library:
everyone reads it, only facilitators and admins add to it).
"""

from dataclasses import dataclass

from tests.security.world import PERSONAS

LOGIN = "login"
GET, POST, GET_POST = "GET", "POST", "GET+POST"


@dataclass(frozen=True)
class Entry:
    method: str
    outcomes: dict
    post: dict | None = None


def row(method: str, *outcomes, post: tuple | None = None) -> Entry:
    return Entry(
        method,
        dict(zip(PERSONAS, outcomes, strict=True)),
        dict(zip(PERSONAS, post, strict=True)) if post else None,
    )


# fmt: off
# columns: anonymous, other org, other circle, member, facilitator of the day, circle facilitator,
#          manager, org admin
EXPECTED: dict[str, Entry] = {
    # --- project -----------------------------------------------------------------------------------
    "home": row(GET, LOGIN, 200, 200, 200, 200, 200, 200, 200),
    # --- accounts ----------------------------------------------------------------------------------
    "accounts:login": row(GET_POST, 200, 302, 302, 302, 302, 302, 302, 302),
    "accounts:logout": row(POST, 302, 302, 302, 302, 302, 302, 302, 302),
    "accounts:profile": row(GET_POST, LOGIN, 200, 200, 200, 200, 200, 200, 200),
    "accounts:invitation-accept": row(GET_POST, 200, 200, 200, 200, 200, 200, 200, 200),
    "accounts:people": row(GET, LOGIN, 200, 403, 403, 403, 403, 403, 200),
    "accounts:person": row(GET_POST, LOGIN, 404, 403, 403, 403, 403, 403, 200),
    "accounts:person-deactivate": row(POST, LOGIN, 404, 403, 403, 403, 403, 403, 302),
    "accounts:person-reactivate": row(POST, LOGIN, 404, 403, 403, 403, 403, 403, 302),
    "accounts:invitation-create": row(POST, LOGIN, 200, 403, 403, 403, 403, 403, 200),
    "accounts:invitation-import": row(POST, LOGIN, 200, 403, 403, 403, 403, 403, 200),
    "accounts:invitation-revoke": row(POST, LOGIN, 404, 403, 403, 403, 403, 403, 302),
    "accounts:invitation-resend": row(POST, LOGIN, 404, 403, 403, 403, 403, 403, 302),
    "accounts:organisation": row(GET_POST, LOGIN, 200, 403, 403, 403, 403, 403, 200),
    "accounts:team-create": row(POST, LOGIN, 200, 403, 403, 403, 403, 403, 200),
    "accounts:team-rename": row(POST, LOGIN, 404, 403, 403, 403, 403, 403, 200),
    "accounts:team-delete": row(POST, LOGIN, 404, 403, 403, 403, 403, 403, 302),
    "accounts:crisis-link-create": row(POST, LOGIN, 200, 403, 403, 403, 403, 403, 200),
    "accounts:crisis-link-delete": row(POST, LOGIN, 404, 403, 403, 403, 403, 403, 302),
    "accounts:audit": row(GET, LOGIN, 200, 403, 403, 403, 403, 403, 200),
    "accounts:password_change": row(GET_POST, LOGIN, 200, 200, 200, 200, 200, 200, 200),
    "accounts:password_reset": row(GET_POST, 200, 200, 200, 200, 200, 200, 200, 200),
    "accounts:password_reset_sent": row(GET, 200, 200, 200, 200, 200, 200, 200, 200),
    "accounts:password_reset_confirm": row(GET_POST, 302, 302, 302, 302, 302, 302, 302, 302),
    "accounts:password_reset_complete": row(GET, 200, 200, 200, 200, 200, 200, 200, 200),
    # --- circles -----------------------------------------------------------------------------------
    "circles:circle-list": row(GET, LOGIN, 200, 200, 200, 200, 200, 200, 200),
    "circles:circle-create": row(GET_POST, LOGIN, 200, 403, 403, 403, 200, 403, 403),
    "circles:circle-detail": row(GET, LOGIN, 404, 404, 200, 200, 200, 404, 404),
    "circles:circle-edit": row(GET_POST, LOGIN, 404, 404, 403, 403, 200, 404, 404),
    "circles:circle-archive": row(POST, LOGIN, 404, 404, 403, 403, 302, 404, 404),
    "circles:member-add": row(GET_POST, LOGIN, 404, 404, 403, 403, 200, 404, 404),
    "circles:member-remove": row(POST, LOGIN, 404, 404, 403, 403, 302, 404, 404),
    "circles:circle-leave": row(POST, LOGIN, 404, 404, 302, 302, 302, 404, 404),
    "circles:rota-opt": row(POST, LOGIN, 404, 404, 302, 302, 302, 404, 404),
    "circles:past-sessions": row(GET, LOGIN, 200, 200, 200, 200, 200, 200, 200),
    "circles:session-detail": row(GET, LOGIN, 404, 404, 200, 200, 200, 404, 404),
    "circles:session-change": row(GET_POST, LOGIN, 404, 404, 403, 403, 200, 404, 404),
    "circles:session-room": row(GET, LOGIN, 404, 404, 200, 200, 200, 404, 404),
    "circles:cover-request": row(POST, LOGIN, 404, 404, 302, 302, 302, 404, 404),
    "circles:session-ics": row(GET, LOGIN, 404, 404, 200, 200, 200, 404, 404),
    "circles:cover-accept": row(POST, LOGIN, 404, 404, 302, 302, 302, 404, 404),
    "circles:away": row(GET_POST, LOGIN, 200, 200, 200, 200, 200, 200, 200),
    "circles:away-delete": row(POST, LOGIN, 404, 404, 302, 404, 404, 404, 404),
    "circles:calendar": row(GET_POST, LOGIN, 200, 200, 200, 200, 200, 200, 200),
    "circles:calendar-feed": row(GET, 200, 200, 200, 200, 200, 200, 200, 200),
    "circles:template-list": row(GET, LOGIN, 200, 403, 403, 403, 200, 403, 403),
    "circles:template-create": row(GET_POST, LOGIN, 200, 403, 403, 403, 200, 403, 403),
    "circles:template-detail": row(GET, LOGIN, 404, 403, 403, 403, 200, 403, 403),
    "circles:template-edit": row(GET_POST, LOGIN, 404, 403, 403, 403, 200, 403, 403),
    "circles:template-copy": row(POST, LOGIN, 404, 403, 403, 403, 302, 403, 403),
    "circles:cohort-list": row(GET, LOGIN, 200, 403, 403, 403, 200, 403, 200),
    "circles:cohort-create": row(GET_POST, LOGIN, 200, 403, 403, 403, 200, 403, 200),
    "circles:cohort-detail": row(GET, LOGIN, 404, 403, 403, 403, 200, 403, 200),
    "circles:cohort-edit": row(GET_POST, LOGIN, 404, 403, 403, 403, 200, 403, 200),
    "circles:cohort-plan": row(POST, LOGIN, 404, 403, 403, 403, 302, 403, 302),
    "circles:cohort-publish": row(POST, LOGIN, 404, 403, 403, 403, 302, 403, 302),
    "circles:cohort-keep-apart": row(POST, LOGIN, 404, 403, 403, 403, 200, 403, 200),
    "circles:cohort-keep-apart-delete": row(POST, LOGIN, 404, 403, 403, 403, 302, 403, 302),
    "circles:cohort-unavailable": row(POST, LOGIN, 404, 403, 403, 403, 200, 403, 200),
    "circles:cohort-unavailable-delete": row(POST, LOGIN, 404, 403, 403, 403, 302, 403, 302),
    # --- reflections -------------------------------------------------------------------------------
    "reflections:threads": row(GET, LOGIN, 404, 404, 200, 200, 200, 404, 404),
    "reflections:thread-new": row(GET_POST, LOGIN, 404, 404, 200, 200, 200, 404, 404),
    "reflections:concerns": row(GET, LOGIN, 404, 404, 403, 403, 200, 404, 404),
    "reflections:concern-new": row(GET_POST, LOGIN, 404, 404, 200, 200, 200, 404, 404),
    "reflections:concern-received": row(GET, LOGIN, 404, 404, 200, 200, 200, 404, 404),
    "reflections:concern-resolve": row(POST, LOGIN, 404, 404, 403, 403, 302, 404, 404),
    "reflections:thread": row(GET, LOGIN, 404, 404, 200, 200, 200, 404, 404),
    "reflections:thread-edit": row(GET_POST, LOGIN, 404, 404, 200, 403, 403, 404, 404),
    "reflections:thread-delete": row(POST, LOGIN, 404, 404, 302, 403, 403, 404, 404),
    "reflections:thread-takeaway": row(POST, LOGIN, 404, 404, 200, 403, 403, 404, 404),
    "reflections:thread-affirm": row(POST, LOGIN, 404, 404, 302, 302, 302, 404, 404),
    "reflections:reply-create": row(POST, LOGIN, 404, 404, 200, 200, 200, 404, 404),
    "reflections:replies-after": row(GET, LOGIN, 404, 404, 200, 200, 200, 404, 404),
    "reflections:reply-edit": row(GET_POST, LOGIN, 404, 404, 200, 403, 403, 404, 404),
    "reflections:reply-delete": row(POST, LOGIN, 404, 404, 302, 403, 403, 404, 404),
    "reflections:reply-affirm": row(POST, LOGIN, 404, 404, 302, 302, 302, 404, 404),
    "reflections:prompts": row(
        GET_POST, LOGIN, 200, 200, 200, 200, 200, 200, 200, post=(LOGIN, 200, 403, 403, 403, 200, 403, 200)
    ),
    "reflections:prompt-remove": row(POST, LOGIN, 404, 403, 403, 403, 302, 403, 302),
    "reflections:journal": row(GET_POST, LOGIN, 200, 200, 200, 200, 200, 200, 200),
    "reflections:journal-edit": row(GET_POST, LOGIN, 404, 404, 200, 404, 404, 404, 404),
    "reflections:journal-delete": row(POST, LOGIN, 404, 404, 302, 404, 404, 404, 404),
    "reflections:intentions": row(GET_POST, LOGIN, 200, 200, 200, 200, 200, 200, 200),
    "reflections:intention": row(GET_POST, LOGIN, 404, 404, 200, 404, 404, 404, 404),
    "reflections:intention-step": row(POST, LOGIN, 404, 404, 200, 404, 404, 404, 404),
    "reflections:intention-reached": row(POST, LOGIN, 404, 404, 302, 404, 404, 404, 404),
    "reflections:intention-delete": row(POST, LOGIN, 404, 404, 302, 404, 404, 404, 404),
    "reflections:my-data": row(GET, LOGIN, 200, 200, 200, 200, 200, 200, 200),
    "reflections:my-data-export": row(GET, LOGIN, 200, 200, 200, 200, 200, 200, 200),
    "reflections:my-data-erase": row(POST, LOGIN, 200, 200, 200, 200, 200, 200, 200),
    # --- insights ----------------------------------------------------------------------------------
    "insights:overview": row(GET, LOGIN, 200, 403, 403, 403, 403, 200, 200),
    "insights:month": row(GET, LOGIN, 200, 403, 403, 403, 403, 200, 200),
    "insights:month-csv": row(GET, LOGIN, 200, 403, 403, 403, 403, 200, 200),
    "insights:group": row(GET, LOGIN, 404, 403, 403, 403, 403, 200, 200),
    "insights:group-csv": row(GET, LOGIN, 404, 403, 403, 403, 403, 200, 200),
    "insights:my-team": row(GET, LOGIN, 200, 200, 200, 200, 200, 200, 200),
    # --- notifications -----------------------------------------------------------------------------
    "notifications:list": row(GET, LOGIN, 200, 200, 200, 200, 200, 200, 200),
    "notifications:read": row(POST, LOGIN, 404, 404, 302, 404, 404, 404, 404),
    "notifications:read-all": row(POST, LOGIN, 302, 302, 302, 302, 302, 302, 302),
    "notifications:digest": row(POST, LOGIN, 302, 302, 302, 302, 302, 302, 302),
    "notifications:unsubscribe": row(GET_POST, 200, 200, 200, 200, 200, 200, 200, 200),
    # --- project -----------------------------------------------------------------------------------
    "healthz": row(GET, 200, 200, 200, 200, 200, 200, 200, 200),
}
# fmt: on


# --- WebSocket handshakes ---------------------------------------------------------------------------
# "open", or the close code that refuses the handshake. Keyed by the route as config.routing spells it.
OPEN = "open"
WS_HANDSHAKES: dict[str, dict] = {
    "ws/circles/sessions/<int:pk>/room/": dict(
        zip(PERSONAS, (4401, 4404, 4404, OPEN, OPEN, OPEN, 4404, 4404), strict=True)
    ),
    "ws/threads/<int:pk>/": dict(
        zip(PERSONAS, (4403, 4403, 4403, OPEN, OPEN, OPEN, 4403, 4403), strict=True)
    ),
    "ws/notifications/": dict(zip(PERSONAS, (4401, OPEN, OPEN, OPEN, OPEN, OPEN, OPEN, OPEN), strict=True)),
}

# --- Live room messages ------------------------------------------------------------------------------
# Each message sent alone, in a fresh session that has not started, by the three personas the room
# lets in (member, facilitator of the day, circle facilitator): the reply's type, or its error code.
# "forbidden" is the authorisation answer; wrong_state means the rule let the person through and
# the session's state stopped the command.
ROOM_MESSAGES: dict[str, tuple] = {
    "sync": ("snapshot", "snapshot", "snapshot"),
    "ping": ("pong", "pong", "pong"),
    "session.start": ("forbidden", "ack", "ack"),
    "session.end": ("forbidden", "ack", "ack"),
    "round.next": ("forbidden", "wrong_state", "wrong_state"),
    "round.previous": ("forbidden", "wrong_state", "wrong_state"),
    "turn.accept": ("wrong_state", "wrong_state", "wrong_state"),
    "turn.pass": ("wrong_state", "wrong_state", "wrong_state"),
    "turn.finish": ("wrong_state", "wrong_state", "wrong_state"),
    "piece.give": ("forbidden", "wrong_state", "wrong_state"),
    "hand.raise": ("wrong_state", "wrong_state", "wrong_state"),
    "hand.lower": ("wrong_state", "wrong_state", "wrong_state"),
    "order.set": ("forbidden", "wrong_state", "wrong_state"),
    "order.shuffle": ("forbidden", "wrong_state", "wrong_state"),
    "facilitation.hand": ("forbidden", "ack", "ack"),
    "message.post": ("ack", "ack", "ack"),
    "moment.set": ("ack", "ack", "ack"),
    "away.set": ("ack", "ack", "ack"),
    "no.such.type": ("unknown_type", "unknown_type", "unknown_type"),
}
# The thread socket's messages, for the three personas it lets in; the badge socket takes none.
THREAD_MESSAGES: dict[str, tuple] = {
    "ping": ("pong", "pong", "pong"),
    "read": ("read.saved", "read.saved", "read.saved"),
    "no.such.type": ("error", "error", "error"),
}
NOTIFICATION_MESSAGES: dict[str, tuple] = {"ping": ("error",) * 3, "no.such.type": ("error",) * 3}
