"""Two ASGI server processes share the Redis channel layer: people on different servers see each other."""

import json
from types import SimpleNamespace

import pytest
from websockets.sync.client import connect

from tests.circles.live_support import make_session, session_cookie
from tests.e2e.servers import AsgiServer
from tests.factories import make_circle, make_org, make_person

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def servers(transactional_db):
    pair = [AsgiServer().start(), AsgiServer().start()]
    yield pair
    for server in pair:
        server.stop()


@pytest.fixture
def room(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    org = make_org()
    fran = make_person(org, "Fran Facilitator")
    alice = make_person(org, "Alice Member")
    circle = make_circle(fran, members=[alice])
    session = make_session(circle, facilitator=fran)
    return SimpleNamespace(session=session, fran=fran, alice=alice)


def open_socket(server: AsgiServer, user, session):
    return connect(
        f"ws://127.0.0.1:{server.port}/ws/circles/sessions/{session.pk}/room/",
        origin=server.base_url,
        additional_headers={"Cookie": f"sessionid={session_cookie(user)}"},
        open_timeout=20,
    )


def until(socket, predicate) -> dict:
    while True:
        message = json.loads(socket.recv(timeout=20))
        if predicate(message):
            return message


def is_event(kind):
    return lambda m: m["type"] == "event" and m["event"]["kind"] == kind


def test_people_on_two_servers_see_each_others_events(servers, room):
    first, second = servers
    with (
        open_socket(first, room.fran, room.session) as fran,
        open_socket(second, room.alice, room.session) as alice,
    ):
        fran.send(json.dumps({"type": "sync", "last_seq": None}))
        until(fran, lambda m: m["type"] == "snapshot")
        alice.send(json.dumps({"type": "sync", "last_seq": None}))
        until(alice, lambda m: m["type"] == "snapshot")

        fran.send(json.dumps({"type": "session.start", "id": "start"}))
        started = until(alice, is_event("session.started"))
        alice.send(json.dumps({"type": "message.post", "id": "hello", "text": "Hello from server two"}))
        posted = until(fran, is_event("message.posted"))
        ack = until(alice, lambda m: m["type"] == "ack")

    assert started["event"]["patch"]["status"] == "live"
    assert started["event"]["actor"] == room.fran.pk
    assert posted["event"]["message"]["text"] == "Hello from server two"
    assert ack["seq"] == posted["event"]["seq"]
