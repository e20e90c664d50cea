"""The WebSocket half of the authorisation matrix: every socket route's handshake for every persona,
and every message type of each consumer for the personas it lets in (tests/security/expected_access.py).

Routes come from config.routing, message types from circles.live, so a new socket or a new command
without an entry fails here. Each room message is sent alone in a fresh session that has not
started, so one message's effect cannot change the next one's answer.
"""

import itertools
import json
from datetime import timedelta

import pytest
from channels.layers import channel_layers
from django.utils import timezone

from circles import live
from circles.models import CircleSession
from config.routing import websocket_urlpatterns
from tests.circles.live_support import make_session, session_cookie
from tests.security.expected_access import (
    NOTIFICATION_MESSAGES,
    OPEN,
    ROOM_MESSAGES,
    THREAD_MESSAGES,
    WS_HANDSHAKES,
)
from tests.security.fuzzing import FuzzSocket
from tests.security.world import CIRCLE_FACILITATOR, FACILITATOR_OF_DAY, MEMBER, PERSONAS, build_world

pytestmark = pytest.mark.django_db(transaction=True)

ROOM, THREAD, BADGE = "ws/circles/sessions/<int:pk>/room/", "ws/threads/<int:pk>/", "ws/notifications/"
LET_IN = (MEMBER, FACILITATOR_OF_DAY, CIRCLE_FACILITATOR)


@pytest.fixture
def world(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    world = build_world()
    world.cookies = {p: session_cookie(u) for p, u in world.people.items() if u is not None}
    yield world
    channel_layers.backends.clear()


_occurrences = itertools.count(1)


def fresh_session(world) -> CircleSession:
    """A session whose room is open now. The circle meets once per occurrence date, so each fresh
    session is filed under a date of its own (the room opens by starts_at, not by that date)."""
    return make_session(
        world.circle,
        facilitator=world.people[FACILITATOR_OF_DAY],
        occurrence_date=timezone.now().date() + timedelta(days=next(_occurrences)),
    )


def path_for(world, route: str, session=None) -> str:
    pk = {ROOM: (session or world.session).pk, THREAD: world.thread.pk}.get(route)
    return "/" + route.replace("<int:pk>", str(pk))


def test_every_socket_route_and_room_message_has_an_entry():
    assert {str(route.pattern) for route in websocket_urlpatterns} == set(WS_HANDSHAKES)
    assert set(ROOM_MESSAGES) == {"sync", "ping", *live.COMMAND_FIELDS, "no.such.type"}


def handshake(world, route: str, persona: str):
    socket = FuzzSocket(path_for(world, route), world.cookies.get(persona, ""))
    connected, code = socket.run(socket.comm.connect(timeout=10))
    socket.close()
    return OPEN if connected else code


def test_each_socket_lets_in_only_the_table_s_personas(world):
    wrong = [
        f"{route} {persona}: expected {expected}, got {got}"
        for route, row in WS_HANDSHAKES.items()
        for persona, expected in row.items()
        if (got := handshake(world, route, persona)) != expected
    ]
    assert not wrong, "\n".join(wrong)
    assert tuple(WS_HANDSHAKES[ROOM]) == PERSONAS


def message_for(world, kind: str, persona: str) -> dict:
    fields = {
        "round.next": {"round": 0},
        "round.previous": {"round": 0},
        "piece.give": {"to": world.people[persona].pk},
        "order.set": {"order": []},
        "facilitation.hand": {"to": world.people[MEMBER].pk},
        "message.post": {"text": "Hello, everyone"},
        "moment.set": {"on": True},
        "away.set": {"on": True},
        "sync": {"last_seq": None},
    }.get(kind, {})
    return {"type": kind, "id": f"matrix-{kind}", **fields}


def answer(world, route: str, persona: str, message: dict, session=None) -> str:
    socket = FuzzSocket(path_for(world, route, session), world.cookies[persona])
    socket.connect()
    socket.exchange([("text", json.dumps(message))])
    socket.close()
    (reply,) = socket.replies
    return reply


@pytest.mark.parametrize("kind", sorted(ROOM_MESSAGES))
def test_each_room_message_answers_each_persona_as_the_table_says(world, kind):
    got = tuple(
        answer(world, ROOM, persona, message_for(world, kind, persona), fresh_session(world))
        for persona in LET_IN
    )
    assert got == ROOM_MESSAGES[kind]


@pytest.mark.parametrize(("route", "table"), [(THREAD, THREAD_MESSAGES), (BADGE, NOTIFICATION_MESSAGES)])
def test_thread_and_badge_sockets_answer_their_messages_as_the_table_says(world, route, table):
    for kind, expected in table.items():
        got = tuple(answer(world, route, persona, {"type": kind}) for persona in LET_IN)
        assert got == expected, kind
