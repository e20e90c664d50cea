"""Hypothesis against every WebSocket consumer: 10,000 frames each through the real ASGI stack.

Frames are JSON of the known message types with fields of every wrong type, JSON of unknown
types, random JSON values, oversize frames, deeply nested arrays, text that is not JSON, and
binary frames. Every frame must be answered (or, for the room, answered or followed by events)
without an exception in the consumer and without the socket closing; at the end the socket still
answers a ping. Hypothesis draws 500 batches of 20 frames per consumer on one open socket.

The in-memory channel layer is enough here: the frames go from the communicator to the consumer,
and the room's events go to the sockets of one process.
"""

import json

import pytest
from channels.layers import channel_layers
from hypothesis import given
from hypothesis import strategies as st

from circles import live
from circles.models import CircleSession
from tests.circles.live_support import session_cookie
from tests.security.fuzzing import FuzzSocket, fuzz_settings
from tests.security.world import CIRCLE_FACILITATOR, FACILITATOR_OF_DAY, MEMBER, build_world

pytestmark = pytest.mark.django_db(transaction=True)

BATCHES, FRAMES_PER_BATCH = 500, 20

ROOM_TYPES = ["sync", "ping", *live.COMMAND_FIELDS]
THREAD_TYPES = ["ping", "read"]
UNKNOWN_TYPES = ["", "PING", "session", "session.start ", "__proto__", "x" * 200, "turn.accept\x00"]
FIELDS = ["id", "last_seq", "round", "to", "order", "text", "on"]

text = st.text(st.characters(codec="utf-8"), max_size=30)
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=8,
)


def frames(types: list[str], ids: list[int]):
    real = st.sampled_from(ids)
    field_value = st.one_of(
        json_value,
        real,
        st.lists(st.one_of(real, json_scalar), max_size=6),
        st.sampled_from(["", " ", "\x00", "a\x00b", "x" * 501, "\u202e", "c1", "c" * 65]),
    )
    # Well-formed values too, so that commands get past validation into the room's rules.
    well_formed = {
        "id": st.text(st.characters(codec="utf-8", min_codepoint=33), min_size=1, max_size=8),
        "last_seq": st.one_of(st.none(), st.integers(0, 60)),
        "round": st.integers(-1, 3),
        "to": real,
        "order": st.permutations(ids),
        "text": st.text(st.characters(codec="utf-8"), min_size=1, max_size=40),
        "on": st.booleans(),
    }
    message = st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(types + UNKNOWN_TYPES), json_scalar)},
        optional={name: st.one_of(well_formed[name], field_value) for name in FIELDS},
    )
    odd_text = st.one_of(
        text,
        st.sampled_from(
            [
                "[" * 4000,
                "[" * 5000,
                '{"type": "ping", "x": ' + "[" * 3000 + "]" * 3000 + "}",
                '{"a":' * 2000,
                "{" + '"type":"ping",' * 400 + '"id":"x"}',
                json.dumps({"type": "message.post", "id": "big", "text": "x" * 5000}),
                "null",
                "[]",
                '"ping"',
                "NaN",
                "{}",
                '{"type": "ping"',
            ]
        ),
        json_value.map(json.dumps),
    )
    return st.one_of(
        message.map(lambda m: ("text", json.dumps(m))),
        odd_text.map(lambda t: ("text", t)),
        st.binary(max_size=64).map(lambda b: ("bytes", b)),
    )


@pytest.fixture
def world(settings, transactional_db):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield build_world()
    channel_layers.backends.clear()


def fuzz(socket: FuzzSocket, strategy, before_each=None) -> None:
    @fuzz_settings(BATCHES)
    @given(batch=st.lists(strategy, min_size=FRAMES_PER_BATCH, max_size=FRAMES_PER_BATCH))
    def send(batch):
        if before_each:
            before_each()
        socket.exchange(batch)

    send()


class SteadyClock:
    """The room allows a burst of 20 frames, refilled at 5 a second. Real time would make 10,000
    frames take half an hour, and nearly all of them would stop at the rate limit before validation.
    This clock moves a quarter of a second per frame, so every frame reaches validation; the limit
    itself is checked with the real clock in test_room_rate_limit_answers_and_keeps_the_socket."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


def test_room_survives_ten_thousand_frames(world, monkeypatch):
    real_bucket = live.TokenBucket
    monkeypatch.setattr(live, "TokenBucket", lambda: real_bucket(clock=SteadyClock()))
    fran = world.people[CIRCLE_FACILITATOR]
    present = [world.people[MEMBER], world.people[FACILITATOR_OF_DAY]]
    for n, person in enumerate(present):
        live.connection_open(session_id=world.session.pk, user_id=person.pk, channel_name=f"fuzz.present.{n}")
    live.perform(
        session_id=world.session.pk, user_id=fran.pk, command=live.Command("session.start", "fuzz-start")
    )

    def keep_the_session_open():
        # A fuzzed session.end would leave every later command at wrong_state: reopen it.
        CircleSession.objects.filter(pk=world.session.pk).exclude(status="live").update(status="live")

    socket = FuzzSocket(f"/ws/circles/sessions/{world.session.pk}/room/", session_cookie(fran))
    socket.connect()
    ids = [fran.pk, *(p.pk for p in present), world.people["other_circle"].pk]
    fuzz(socket, frames(ROOM_TYPES, ids), keep_the_session_open)
    assert socket.sent == BATCHES * FRAMES_PER_BATCH
    assert socket.ping()["type"] == "pong"
    socket.close()
    print(f"room: {socket.sent} frames, replies {sorted(socket.replies.items())}")
    assert "ack" in socket.replies and "invalid" in socket.replies  # frames reached the commands


def test_room_rate_limit_answers_and_keeps_the_socket(world):
    socket = FuzzSocket(
        f"/ws/circles/sessions/{world.session.pk}/room/", session_cookie(world.people[MEMBER])
    )
    socket.connect()
    burst = [("text", json.dumps({"type": "ping", "id": f"p{n}"})) for n in range(int(live.RATE_BURST) + 10)]
    socket.exchange(burst)
    socket.close()
    assert socket.replies.get("rate_limited", 0) >= 5
    assert socket.replies.get("pong", 0) >= live.RATE_BURST


def test_thread_socket_survives_ten_thousand_frames(world):
    socket = FuzzSocket(f"/ws/threads/{world.thread.pk}/", session_cookie(world.people[MEMBER]))
    socket.connect()
    fuzz(socket, frames(THREAD_TYPES, [world.thread.pk]))
    assert socket.sent == BATCHES * FRAMES_PER_BATCH
    assert socket.ping()["type"] == "pong"
    socket.close()
    print(f"thread: {socket.sent} frames, replies {sorted(socket.replies.items())}")


def test_notification_socket_survives_ten_thousand_frames(world):
    socket = FuzzSocket("/ws/notifications/", session_cookie(world.people[MEMBER]))
    socket.connect()
    fuzz(socket, frames(["ping"], [world.notification.pk]))
    assert socket.sent == BATCHES * FRAMES_PER_BATCH
    # This socket takes no commands: a ping is answered with the same plain error as anything else.
    assert socket.ping()["type"] == "error"
    socket.close()
    print(f"notifications: {socket.sent} frames, replies {sorted(socket.replies.items())}")
