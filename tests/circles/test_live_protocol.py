"""The room socket end to end through the real ASGI stack (origin check, session auth, routing)."""

import asyncio
import json
import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.db import transaction
from django.utils import timezone

from circles import live
from circles.models import Attendance, CircleSession, ClientCommand, Membership, SessionEvent
from tests.circles.live_support import (
    RECEIVE_TIMEOUT,
    communicator,
    join,
    make_session,
    session_cookie,
)
from tests.factories import make_circle, make_org, make_person

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test runs in its own event loop; a Redis layer's locks belong to the loop that made them."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def room(transactional_db, settings):
    # Five sign-ups per test: the deliberately slow production hasher would dominate the run.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    org = make_org()
    fran = make_person(org, "Fran Facilitator", is_facilitator=True)
    alice = make_person(org, "Alice Member")
    bob = make_person(org, "Bob Member")
    stranger = make_person(org, "Sam Sameorg")
    outsider = make_person(make_org("Elsewhere Health"), "Otto Outsider", is_facilitator=True)
    circle = make_circle(fran, members=[alice, bob])
    session = make_session(circle, facilitator=fran)
    return SimpleNamespace(
        org=org,
        circle=circle,
        session=session,
        fran=fran,
        alice=alice,
        bob=bob,
        cookie={
            name: session_cookie(person)
            for name, person in [
                ("fran", fran),
                ("alice", alice),
                ("bob", bob),
                ("stranger", stranger),
                ("outsider", outsider),
            ]
        },
        ids=SimpleNamespace(fran=fran.pk, alice=alice.pk, bob=bob.pk),
    )


async def refused(cookie, session, **kwargs) -> int:
    comm = communicator(cookie, session, **kwargs)
    connected, code = await comm.connect(timeout=RECEIVE_TIMEOUT)
    await comm.disconnect()
    assert not connected
    return code


async def started(room):
    """Fran, Alice and Bob in the room (in that order) and the session started."""
    fran = await join(room.cookie["fran"], room.session)
    alice = await join(room.cookie["alice"], room.session)
    bob = await join(room.cookie["bob"], room.session)
    reply = await fran.command("session.start")
    assert reply["type"] == "ack"
    return fran, alice, bob


async def close_all(*sockets):
    for socket in sockets:
        await socket.comm.disconnect()


# --- Handshake --------------------------------------------------------------------------------


async def test_anonymous_handshake_is_refused(room):
    assert await refused(None, room.session) == live.CLOSE_SIGNED_OUT


async def test_person_from_another_organisation_is_refused_as_if_there_were_no_room(room):
    assert await refused(room.cookie["outsider"], room.session) == live.CLOSE_NOT_FOUND


async def test_colleague_outside_the_circle_is_refused(room):
    assert await refused(room.cookie["stranger"], room.session) == live.CLOSE_NOT_FOUND


async def test_member_who_left_the_circle_is_refused(room):
    await database_sync_to_async(Membership.objects.filter(user=room.alice, circle=room.circle).update)(
        left_at=timezone.now()
    )
    assert await refused(room.cookie["alice"], room.session) == live.CLOSE_NOT_FOUND


async def test_socket_from_another_origin_is_refused(room):
    comm = communicator(room.cookie["alice"], room.session, origin=b"https://evil.example")
    connected, _ = await comm.connect(timeout=RECEIVE_TIMEOUT)
    await comm.disconnect()
    assert not connected


async def test_room_is_closed_before_the_join_window_opens(room):
    later = await database_sync_to_async(make_session)(room.circle, starts_in=timedelta(days=1))
    assert await refused(room.cookie["alice"], later) == live.CLOSE_NOT_OPEN


async def test_cancelled_session_has_no_room(room):
    await database_sync_to_async(CircleSession.objects.filter(pk=room.session.pk).update)(status="cancelled")
    assert await refused(room.cookie["alice"], room.session) == live.CLOSE_NOT_OPEN


# --- Sync, snapshot, heartbeat ----------------------------------------------------------------


async def test_first_sync_returns_a_snapshot_with_rounds_people_and_presence(room):
    alice = await join(room.cookie["alice"], room.session)
    snap = await alice.snapshot()
    await close_all(alice)
    assert snap["status"] == "scheduled"
    assert snap["present"] == [room.ids.alice]
    assert snap["facilitator"] == room.ids.fran
    assert snap["me"] == room.ids.alice
    assert snap["rounds"][0]["title"] == "Check-in"
    assert snap["people"][str(room.ids.bob)]["name"] == "Bob Member"


async def test_sync_with_last_seq_returns_only_the_missed_events(room):
    fran, alice, bob = await started(room)
    seq_before = (await alice.snapshot())["seq"]
    await fran.command("message.post", text="Welcome, everyone")
    await alice.comm.send_json_to({"type": "sync", "last_seq": seq_before})
    reply = await alice.reply(types=("events",))
    await close_all(fran, alice, bob)
    assert [e["kind"] for e in reply["events"]] == ["message.posted"]
    assert reply["events"][0]["seq"] == seq_before + 1
    assert reply["events"][0]["message"]["text"] == "Welcome, everyone"


async def test_client_too_far_behind_gets_a_snapshot(room, monkeypatch):
    monkeypatch.setattr(live, "REPLAY_LIMIT", 2)
    fran, alice, bob = await started(room)
    for n in range(3):
        await fran.command("message.post", text=f"note {n}")
    await alice.comm.send_json_to({"type": "sync", "last_seq": 0})
    reply = await alice.reply(types=("snapshot", "events"))
    await close_all(fran, alice, bob)
    assert reply["type"] == "snapshot"
    assert [m["text"] for m in reply["snapshot"]["messages"]] == ["note 0", "note 1", "note 2"]


async def test_sync_with_a_negative_seq_is_an_error_and_the_socket_stays_open(room):
    alice = await join(room.cookie["alice"], room.session)
    await alice.comm.send_json_to({"type": "sync", "id": "s1", "last_seq": -4})
    error = await alice.reply("s1")
    pong = await alice.command("ping")
    await close_all(alice)
    assert error["code"] == "invalid"
    assert pong["type"] == "pong"


async def test_ping_is_answered_and_refreshes_the_connection(room):
    alice = await join(room.cookie["alice"], room.session)
    snapshot = await alice.snapshot()
    await alice.comm.send_json_to({"type": "ping", "id": "p1"})
    pong = await alice.reply("p1", types=("pong",))
    await close_all(alice)
    assert pong == {"type": "pong", "id": "p1", "seq": snapshot["seq"]}


async def test_the_pong_carries_the_rooms_seq_so_a_client_can_see_a_bell_it_missed(room):
    alice = await join(room.cookie["alice"], room.session)
    snapshot = await alice.snapshot()
    # An event committed without a broadcast, as when a commit's outcome was lost with Postgres.
    await database_sync_to_async(_record_unannounced)(room.session.pk)
    await alice.comm.send_json_to({"type": "ping", "id": "p2"})
    pong = await alice.reply("p2", types=("pong",))
    await close_all(alice)
    assert pong["seq"] == snapshot["seq"] + 1
    assert not [e for e in alice.events if e["seq"] > snapshot["seq"]]  # no bell rang for it


def _record_unannounced(session_id: int) -> None:
    with transaction.atomic():
        room = live._lock_room(session_id)
        live._record(room, kind="moment.set", actor_id=None, patch={"away": []})
        transaction.get_connection().run_on_commit = []  # drop the broadcast


async def test_a_broadcast_reaches_the_socket_while_djangos_sync_thread_is_busy(room):
    # Deliveries must not queue behind other rooms' transactions on the one sync thread.
    alice = await join(room.cookie["alice"], room.session)
    await alice.snapshot()
    release = threading.Event()
    busy = asyncio.ensure_future(database_sync_to_async(release.wait)(RECEIVE_TIMEOUT * 2))
    try:
        await get_channel_layer().group_send(
            live.room_group(room.session.pk), {"type": "live.event", "text": '{"type":"bell"}'}
        )
        heard = await alice.comm.receive_json_from(timeout=RECEIVE_TIMEOUT)
        while heard["type"] == "event":  # her own arrival may still be on its way
            heard = await alice.comm.receive_json_from(timeout=RECEIVE_TIMEOUT)
        still_busy = not busy.done()
    finally:
        release.set()
        await busy
    await close_all(alice)
    assert heard == {"type": "bell"}
    assert still_busy


# --- Commands ---------------------------------------------------------------------------------


async def test_start_is_acknowledged_and_broadcast_to_everyone(room):
    fran = await join(room.cookie["fran"], room.session)
    alice = await join(room.cookie["alice"], room.session)
    reply = await fran.command("session.start")
    seen = await alice.event("session.started")
    await close_all(fran, alice)
    assert reply["type"] == "ack" and reply["duplicate"] is False
    assert seen["seq"] == reply["seq"]
    assert seen["patch"]["status"] == "live"
    assert seen["patch"]["order"] == [room.ids.fran, room.ids.alice]


async def test_turns_accept_pass_and_finish_move_the_talking_piece(room):
    fran, alice, bob = await started(room)
    assert (await alice.command("turn.accept"))["code"] == "not_your_turn"
    accepted = await fran.command("turn.accept")
    held = await bob.event("turn.accepted")
    assert accepted["type"] == "ack"
    assert held["patch"]["holder"] == room.ids.fran
    assert held["patch"]["timer"]["seconds"] == 120
    await fran.command("turn.finish")
    finished = await bob.event("turn.finished")
    assert finished["patch"] == {"spoken": [room.ids.fran], "holder": None, "timer": None}
    passed = await alice.command("turn.pass")
    event = await bob.event("turn.passed")
    await close_all(fran, alice, bob)
    assert passed["type"] == "ack"
    assert event["patch"] == {"order": [room.ids.bob], "spoken": [room.ids.fran, room.ids.alice]}


async def test_facilitator_can_finish_someone_elses_turn_but_a_member_cannot(room):
    fran, alice, bob = await started(room)
    await fran.command("piece.give", to=room.ids.alice)
    refused_finish = await bob.command("turn.finish")
    finished = await fran.command("turn.finish")
    await close_all(fran, alice, bob)
    assert refused_finish["code"] == "forbidden"
    assert finished["type"] == "ack"


async def test_facilitator_gives_the_piece_to_a_raised_hand(room):
    fran, alice, bob = await started(room)
    await bob.command("hand.raise")
    raised = await alice.event("hand.raised")
    await fran.command("piece.give", to=room.ids.bob)
    given = await alice.event("piece.given")
    lowered_by_alice = await alice.command("hand.lower")
    await close_all(fran, alice, bob)
    assert raised["patch"] == {"hands": [room.ids.bob]}
    assert given["patch"]["holder"] == room.ids.bob
    assert given["patch"]["hands"] == []
    assert given["patch"]["order"] == [room.ids.fran, room.ids.alice]
    # Lowering a hand that is not raised changes nothing: acknowledged, and no event.
    assert lowered_by_alice["seq"] == given["seq"]


async def test_piece_can_only_go_to_someone_who_is_here(room):
    fran = await join(room.cookie["fran"], room.session)
    await fran.command("session.start")
    reply = await fran.command("piece.give", to=room.ids.bob)
    await close_all(fran)
    assert reply["code"] == "invalid"


async def test_hand_raise_and_lower(room):
    fran, alice, bob = await started(room)
    await alice.command("hand.raise")
    await alice.command("hand.lower")
    lowered = await bob.event("hand.lowered")
    await close_all(fran, alice, bob)
    assert lowered["patch"] == {"hands": []}


async def test_facilitator_reorders_and_shuffles_the_speaking_order(room):
    fran, alice, bob = await started(room)
    new_order = [room.ids.bob, room.ids.alice, room.ids.fran]
    await fran.command("order.set", order=new_order)
    changed = await alice.event("order.changed")
    wrong = await fran.command("order.set", order=[room.ids.bob])
    shuffled = await fran.command("order.shuffle")
    snap = await alice.snapshot()
    await close_all(fran, alice, bob)
    assert changed["patch"] == {"order": new_order}
    assert wrong["code"] == "invalid"
    assert shuffled["type"] == "ack"
    assert sorted(snap["order"]) == sorted(new_order)


async def test_member_cannot_reorder_shuffle_give_or_move_rounds(room):
    fran, alice, bob = await started(room)
    replies = [
        await alice.command("order.shuffle"),
        await alice.command("order.set", order=[room.ids.alice, room.ids.fran, room.ids.bob]),
        await alice.command("piece.give", to=room.ids.alice),
        await alice.command("round.next", round=0),
        await alice.command("session.end"),
        await alice.command("facilitation.hand", to=room.ids.alice),
    ]
    await close_all(fran, alice, bob)
    assert [r["code"] for r in replies] == ["forbidden"] * 6


async def test_rounds_move_forward_and_back_and_a_stale_move_is_refused(room):
    fran, alice, bob = await started(room)
    await fran.command("turn.accept")
    moved = await fran.command("round.next", round=0)
    event = await alice.event("round.moved")
    stale = await fran.command("round.next", round=0)
    back = await fran.command("round.previous", round=1)
    too_far = await fran.command("round.previous", round=0)
    await close_all(fran, alice, bob)
    assert moved["type"] == "ack"
    assert event["patch"]["round"] == 1
    assert event["patch"]["holder"] is None
    assert event["patch"]["order"] == [room.ids.fran, room.ids.alice, room.ids.bob]
    assert stale["code"] == "stale"
    assert back["type"] == "ack"
    assert too_far["code"] == "invalid"


async def test_round_and_turn_commands_wait_for_the_start(room):
    fran = await join(room.cookie["fran"], room.session)
    early = await fran.command("round.next", round=0)
    again = await fran.command("session.start")
    twice = await fran.command("session.start")
    await close_all(fran)
    assert early["code"] == "wrong_state"
    assert again["type"] == "ack"
    assert twice["code"] == "wrong_state"


async def test_commands_sent_at_once_from_several_sockets_are_heard_in_seq_order(room):
    # Bells are sent by each socket's consumer after its call returns, not from the sync thread:
    # they must still leave in commit order, so a listener never sees a gap it has to sync for.
    fran, alice, bob = await started(room)
    listener = await join(room.cookie["bob"], room.session)
    first = (await listener.snapshot())["seq"]
    senders = [fran, alice, bob]
    ids = [[await s.send("message.post", text=f"{n}-{i}") for i in range(5)] for n, s in enumerate(senders)]
    acks = [[await s.reply(i) for i in sent] for s, sent in zip(senders, ids, strict=True)]
    heard = [(await listener.event("message.posted"))["seq"] for _ in range(15)]
    await close_all(fran, alice, bob, listener)
    assert all(a["type"] == "ack" for sent in acks for a in sent)
    assert heard == list(range(heard[0], heard[0] + 15))
    assert heard[0] > first


async def test_message_post_is_broadcast_trimmed_and_length_limited(room):
    fran, alice, bob = await started(room)
    await alice.command("message.post", text="  thank you  ")
    posted = await bob.event("message.posted")
    too_long = await alice.command("message.post", text="x" * (live.MESSAGE_MAX_CHARS + 1))
    empty = await alice.command("message.post", text="   ")
    await close_all(fran, alice, bob)
    assert posted["message"]["text"] == "thank you"
    assert posted["message"]["author"] == room.ids.alice
    assert too_long["code"] == "invalid"
    assert empty["code"] == "invalid"


async def test_moment_and_away_signals_are_shared(room):
    fran, alice, bob = await started(room)
    await alice.command("moment.set", on=True)
    moment = await bob.event("moment.set")
    await alice.command("away.set", on=True)
    away = await bob.event("away.set")
    await alice.command("away.set", on=False)
    back = await bob.event("away.cleared")
    await close_all(fran, alice, bob)
    assert moment["patch"] == {"moment": [room.ids.alice]}
    assert away["patch"] == {"away": [room.ids.alice]}
    assert back["patch"] == {"away": []}


async def test_facilitation_is_handed_over_and_the_new_facilitator_leads(room):
    fran, alice, bob = await started(room)
    handed = await fran.command("facilitation.hand", to=room.ids.bob)
    event = await alice.event("facilitation.handed")
    moved = await bob.command("round.next", round=0)
    await close_all(fran, alice, bob)
    assert handed["type"] == "ack"
    assert event["patch"] == {"facilitator": room.ids.bob}
    assert moved["type"] == "ack"


async def test_facilitator_who_drops_and_returns_still_leads(room):
    await database_sync_to_async(Membership.objects.filter(user=room.fran).update)(role="member")
    fran, alice, bob = await started(room)
    await fran.command("facilitation.hand", to=room.ids.alice)
    await alice.comm.disconnect()
    alice = await join(room.cookie["alice"], room.session)
    snap = await alice.snapshot()
    moved = await alice.command("round.next", round=0)
    by_fran = await fran.command("round.next", round=1)
    await close_all(fran, alice, bob)
    assert snap["facilitator"] == room.ids.alice
    assert moved["type"] == "ack"
    assert by_fran["code"] == "forbidden"


async def test_end_closes_attendance_and_deletes_chat_text(room):
    fran, alice, bob = await started(room)
    await alice.command("message.post", text="something personal")
    await fran.command("session.end")
    ended = await bob.event("session.ended")
    after = await alice.command("message.post", text="too late")
    await close_all(fran, alice, bob)
    assert ended["patch"]["status"] == "ended"
    assert ended["patch"]["messages"] == []
    assert after["code"] == "wrong_state"
    texts = await database_sync_to_async(
        lambda: list(SessionEvent.objects.filter(kind="message.posted").values_list("text", flat=True))
    )()
    assert texts == [""]
    open_stretches = await database_sync_to_async(Attendance.objects.filter(left_at__isnull=True).count)()
    assert open_stretches == 0


# --- Idempotency ------------------------------------------------------------------------------


async def test_resent_command_is_applied_once_and_acknowledged_with_the_same_seq(room):
    fran, alice, bob = await started(room)
    first = await alice.reply(await alice.send("message.post", id_="msg-1", text="once"))
    second = await alice.reply(await alice.send("message.post", id_="msg-1", text="once"))
    await close_all(fran, alice, bob)
    assert first["duplicate"] is False
    assert second == {**first, "duplicate": True}
    count = await database_sync_to_async(SessionEvent.objects.filter(kind="message.posted").count)()
    assert count == 1


async def test_same_client_id_from_two_people_are_two_commands(room):
    fran, alice, bob = await started(room)
    a = await alice.reply(await alice.send("hand.raise", id_="same"))
    b = await bob.reply(await bob.send("hand.raise", id_="same"))
    await close_all(fran, alice, bob)
    assert not a["duplicate"] and not b["duplicate"]
    assert await database_sync_to_async(ClientCommand.objects.filter(client_id="same").count)() == 2


# --- Bad messages: an error, and the socket stays open -----------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "invalid"),
        (json.dumps({"id": "x"}), "invalid"),
        (json.dumps({"type": "teleport", "id": "x"}), "unknown_type"),
        (json.dumps({"type": "hand.raise"}), "invalid"),
        (json.dumps({"type": "hand.raise", "id": 7}), "invalid"),
        (json.dumps({"type": "hand.raise", "id": "x" * 65}), "invalid"),
        (json.dumps({"type": "round.next", "id": "x", "round": "1"}), "invalid"),
        (json.dumps({"type": "round.next", "id": "x", "round": True}), "invalid"),
        (json.dumps({"type": "piece.give", "id": "x"}), "invalid"),
        (json.dumps({"type": "order.set", "id": "x", "order": [1, "2"]}), "invalid"),
        (json.dumps({"type": "message.post", "id": "x", "text": 5}), "invalid"),
        (json.dumps({"type": "moment.set", "id": "x", "on": "yes"}), "invalid"),
        (json.dumps({"type": "message.post", "id": "x", "text": "a" * 5000}), "too_large"),
    ],
)
async def test_bad_message_gets_an_error_and_the_socket_stays_open(room, frame, code):
    alice = await join(room.cookie["alice"], room.session)
    await alice.comm.send_to(text_data=frame)
    error = await alice.reply(types=("error",))
    pong = await alice.command("ping")
    await close_all(alice)
    assert error["code"] == code
    assert error["message"]
    assert pong["type"] == "pong"


async def test_binary_frame_gets_an_error(room):
    alice = await join(room.cookie["alice"], room.session)
    await alice.comm.send_to(bytes_data=b"\x00\x01")
    error = await alice.reply(types=("error",))
    await close_all(alice)
    assert error["code"] == "invalid"


async def test_too_many_messages_a_second_are_refused_then_the_socket_recovers(room, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(live.TokenBucket.__init__, "__defaults__", (5.0, 3.0, lambda: clock[0]))
    alice = await join(room.cookie["alice"], room.session)
    for _ in range(3):
        await alice.command("ping")
    limited = await alice.reply(await alice.send("ping"))
    clock[0] += 1.0
    pong = await alice.command("ping")
    await close_all(alice)
    assert limited["code"] == "rate_limited"
    assert pong["type"] == "pong"


# --- Leaving the circle -----------------------------------------------------------------------


async def test_member_removed_from_the_circle_is_disconnected(room):
    alice = await join(room.cookie["alice"], room.session)

    def remove():
        Membership.objects.filter(user=room.alice).update(left_at=timezone.now())
        live.disconnect_user_from_circle(room.alice.pk, room.circle.pk)

    await database_sync_to_async(remove)()
    closed = await alice.reply(types=("closed",))
    output = await alice.comm.receive_output(timeout=5)
    await alice.comm.disconnect()
    assert closed["code"] == "removed"
    assert output == {"type": "websocket.close", "code": live.CLOSE_REMOVED}


async def test_deactivated_person_is_disconnected(room):
    alice = await join(room.cookie["alice"], room.session)

    def deactivate():
        type(room.alice).objects.filter(pk=room.alice.pk).update(is_active=False)
        live.disconnect_user(room.alice.pk)

    await database_sync_to_async(deactivate)()
    closed = await alice.reply(types=("closed",))
    await alice.comm.disconnect()
    assert closed["code"] == "removed"


async def test_removal_in_another_circle_leaves_this_socket_open(room):
    alice = await join(room.cookie["alice"], room.session)
    await database_sync_to_async(live.disconnect_user_from_circle)(room.alice.pk, room.circle.pk + 1000)
    pong = await alice.command("ping")
    await alice.comm.disconnect()
    assert pong["type"] == "pong"


async def test_membership_is_checked_again_on_every_message(room):
    alice = await join(room.cookie["alice"], room.session)
    await database_sync_to_async(Membership.objects.filter(user=room.alice).update)(left_at=timezone.now())
    error = await alice.command("hand.raise")
    output = await alice.comm.receive_output(timeout=5)
    await alice.comm.disconnect()
    assert error["code"] == "not_member"
    assert output == {"type": "websocket.close", "code": live.CLOSE_REMOVED}
