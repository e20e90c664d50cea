"""Live session rooms: every write and read behind a room's socket.

The consumer (circles.consumers) only translates WebSocket frames into calls here, through
database_sync_to_async; the sweeper task and the people/membership services call in too. The wire
protocol is described in docs/live-protocol.md.

Invariants:
- Every live write locks the session's LiveRoom row first. Under that lock the change, its
  SessionEvent (seq = last_seq + 1) and the ClientCommand that caused it are written in one
  transaction, so seq is gap-free and a resent command is found and not applied again.
- The event is broadcast only after commit (transaction.on_commit): Redis rings the bell, Postgres
  is the truth. A lost broadcast is repaired by the client, which sees the gap and asks for it.
- An event's `patch` holds the new value of every state key it changed; `apply_event` merges it.
  So a snapshot plus the events after it always equals a fresh snapshot.
"""

import json
import logging
import random
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import IntegrityError, connection, transaction
from django.db.models import Min
from django.utils import timezone

from circles.models import (
    Attendance,
    CircleSession,
    LiveRoom,
    Membership,
    RoomConnection,
    SessionEvent,
)
from insights.tasks import rollup_refresh_for_session

logger = logging.getLogger(__name__)

JOIN_OPENS_BEFORE = timedelta(minutes=10)
GRACE_AFTER_END = timedelta(minutes=15)
# A drop shorter than this (a flaky train wifi, a reloaded tab) does not split someone's attendance.
ATTENDANCE_MERGE_GAP = timedelta(minutes=2)
# Clients ping every 25 s; a connection silent for longer than this belongs to a server that died.
CONNECTION_STALE_AFTER = timedelta(seconds=90)
# A client further behind than this gets a snapshot instead of the events it missed.
REPLAY_LIMIT = 200
SNAPSHOT_MESSAGES = 50
MESSAGE_MAX_CHARS = 500
FRAME_MAX_BYTES = 4096
CLIENT_ID_MAX = 64
# Token bucket per socket: a steady 5 messages a second, bursts of 20 (a few quick clicks and a resend).
RATE_PER_SECOND = 5.0
RATE_BURST = 20.0

CLOSE_SIGNED_OUT = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_REMOVED = 4403
CLOSE_NOT_OPEN = 4410

EMPTY_STATE = {
    "round": 0,
    "holder": None,
    "order": [],
    "spoken": [],
    "hands": [],
    "timer": None,
    "away": [],
    "moment": [],
}
# The keys a client keeps and events patch; everything else in a snapshot is fixed for the session.
STATE_KEYS = (*EMPTY_STATE, "status", "facilitator", "present", "messages")


class LiveError(Exception):
    """A message we will not apply. `code` is in the protocol; `close_code` ends the socket too."""

    def __init__(self, code: str, message: str, *, close_code: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


def room_group(session_id: int) -> str:
    return f"live.session.{session_id}"


def user_group(user_id: int) -> str:
    return f"live.user.{user_id}"


# --- Inbound messages -------------------------------------------------------------------------


class TokenBucket:
    """Per-socket rate limit. Lives in the consumer's memory: it guards one socket, not a person."""

    def __init__(self, rate: float = RATE_PER_SECOND, burst: float = RATE_BURST, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.updated = burst, clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Each command and the fields it needs, with a check for each field's type.
COMMAND_FIELDS: dict[str, dict] = {
    "session.start": {},
    "session.end": {},
    "round.next": {"round": _is_int},
    "round.previous": {"round": _is_int},
    "turn.accept": {},
    "turn.pass": {},
    "turn.finish": {},
    "piece.give": {"to": _is_int},
    "hand.raise": {},
    "hand.lower": {},
    "order.set": {"order": lambda v: isinstance(v, list) and len(v) <= 50 and all(_is_int(i) for i in v)},
    "order.shuffle": {},
    "facilitation.hand": {"to": _is_int},
    "message.post": {"text": lambda v: isinstance(v, str)},
    "moment.set": {"on": lambda v: isinstance(v, bool)},
    "away.set": {"on": lambda v: isinstance(v, bool)},
}


@dataclass(frozen=True)
class Command:
    type: str
    client_id: str
    fields: dict = field(default_factory=dict)


def parse_frame(text: str | None) -> dict:
    """Decode one text frame into a message object, or raise LiveError."""
    if text is None:
        raise LiveError("invalid", "Send JSON text frames, not binary ones.")
    if len(text.encode()) > FRAME_MAX_BYTES:
        raise LiveError("too_large", f"Messages are limited to {FRAME_MAX_BYTES} bytes.")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        # Nesting a few thousand arrays deep fits in a frame and exhausts the decoder's recursion.
        raise LiveError("bad_json", "That message was not valid JSON.") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise LiveError("invalid", "A message is a JSON object with a string `type`.")
    return message


def message_id(message: dict) -> str | None:
    value = message.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= CLIENT_ID_MAX else None


def parse_command(message: dict) -> Command:
    """Check a command's id and field types against COMMAND_FIELDS."""
    kind = message["type"]
    if kind not in COMMAND_FIELDS:
        raise LiveError("unknown_type", f"We don't know the message type {kind[:40]!r}.")
    client_id = message_id(message)
    if client_id is None:
        raise LiveError("invalid", f"`id` must be a string of 1 to {CLIENT_ID_MAX} characters.")
    fields = {}
    for name, check in COMMAND_FIELDS[kind].items():
        if name not in message or not check(message[name]):
            raise LiveError("invalid", f"`{name}` is missing or has the wrong type for {kind}.")
        fields[name] = message[name]
    return Command(type=kind, client_id=client_id, fields=fields)


def parse_last_seq(message: dict) -> int | None:
    value = message.get("last_seq")
    if value is None:
        return None
    if not _is_int(value) or value < 0:
        raise LiveError("invalid", "`last_seq` must be a whole number of 0 or more, or null.")
    return value


# --- Access -----------------------------------------------------------------------------------


def join_window(session: CircleSession) -> tuple[datetime, datetime]:
    return session.starts_at - JOIN_OPENS_BEFORE, session.ends_at + GRACE_AFTER_END


def room_is_open(session: CircleSession, now: datetime | None = None) -> bool:
    if session.status in (CircleSession.Status.SKIPPED, CircleSession.Status.CANCELLED):
        return False
    opens, closes = join_window(session)
    return opens <= (now or timezone.now()) <= closes


def _membership(session_id: int, user_id: int) -> Membership | None:
    """The person's active membership of the session's circle, if they are still an active user.

    Checked on every command; there is at most one such row, so no ordering is needed.
    """
    return _first(
        Membership.objects.filter(
            circle__sessions__id=session_id, user_id=user_id, left_at__isnull=True, user__is_active=True
        )
    )


def _first(queryset):
    """The first row of a query that finds at most one, without the ORDER BY that .first() adds."""
    return next(iter(queryset[:1]), None)


@dataclass(frozen=True)
class Entry:
    close_code: int | None
    circle_id: int | None = None


def room_entry(*, user_id: int, session_id: int, now: datetime | None = None) -> Entry:
    """May this person open a socket to this room? Outsiders learn nothing (same code as no room)."""
    session = CircleSession.objects.filter(pk=session_id).first()
    if session is None or _membership(session_id, user_id) is None:
        return Entry(CLOSE_NOT_FOUND)
    if not room_is_open(session, now):
        return Entry(CLOSE_NOT_OPEN)
    return Entry(None, session.circle_id)


def _require_member(session_id: int, user_id: int) -> Membership:
    membership = _membership(session_id, user_id)
    if membership is None:
        raise _not_member()
    return membership


def _not_member() -> LiveError:
    return LiveError("not_member", "You are no longer in this circle.", close_code=CLOSE_REMOVED)


# --- Events -----------------------------------------------------------------------------------


def _lock_room(session_id: int) -> LiveRoom:
    """Lock (creating on first use) the session's room row. Caller is inside transaction.atomic.

    The session loads after the lock, when first used: read with the lock, it would be as it was
    before a wait for that lock (see _SEQ_WHEN_BEGUN), and a sweep queued behind the facilitator's
    end would end the session again. The circle and organisation load when needed too.
    """
    rooms = LiveRoom.objects.select_for_update()
    try:
        room = rooms.get(pk=session_id)
    except LiveRoom.DoesNotExist:
        LiveRoom.objects.get_or_create(session_id=session_id, defaults={"state": dict(EMPTY_STATE)})
        room = rooms.get(pk=session_id)
    room.state = {**EMPTY_STATE, **room.state}
    return room


def event_payload(event: SessionEvent) -> dict:
    return _payload(event.seq, event.kind, event.actor_id, event.created_at, event.patch, event.text)


def _payload(seq: int, kind: str, actor_id: int | None, at: datetime, patch: dict, text: str) -> dict:
    payload = {"seq": seq, "kind": kind, "actor": actor_id, "at": at.isoformat(), "patch": patch}
    if kind == "message.posted":
        payload["message"] = {"seq": seq, "author": actor_id, "text": text, "at": payload["at"]}
    return payload


def _message(event: SessionEvent) -> dict:
    return event_payload(event)["message"]


# Set while a room consumer's call runs (with_deferred_broadcasts): bells go in this list, for the
# consumer to ring from the event loop, instead of Django's one sync thread waiting on Redis.
_deferred: ContextVar[list | None] = ContextVar("live_deferred_broadcasts", default=None)


def broadcast(session_id: int, payload: dict) -> None:
    """Ring the bell for everyone in the room. Runs after commit; the event is already safe."""
    text = json.dumps({"type": "event", "event": payload}, separators=(",", ":"))
    message = {"type": "live.event", "text": text}
    deferred = _deferred.get()
    if deferred is not None:
        deferred.append((room_group(session_id), message))
        return
    try:
        async_to_sync(get_channel_layer().group_send)(room_group(session_id), message)
    except Exception:
        # The change is committed; clients that miss this bell see the gap on the next event or
        # heartbeat and fetch it. Failing the caller here would report a saved change as lost.
        logger.exception("Could not broadcast event %s of session %s", payload["seq"], session_id)


def with_deferred_broadcasts(function, /, **kwargs) -> tuple:
    """Call `function(**kwargs)`; return its result and the (group, message) bells its commits
    rang, in commit order, for the caller to send. The room consumer calls every write this way
    and sends the bells as soon as the call returns: calls on the sync thread run one at a time,
    so bells leave in seq order without the thread waiting for Redis."""
    bells: list = []
    token = _deferred.set(bells)
    try:
        return function(**kwargs), bells
    finally:
        _deferred.reset(token)


# The statements every event and command writes, spelled out: they run for each chat line and
# click in every room, and building them through the ORM cost more CPU than Postgres spends on
# them. Every live test runs them, so a renamed table or column fails there.
_INSERT_EVENT = (
    "INSERT INTO circles_sessionevent (session_id, seq, kind, actor_id, patch, text, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
_UPDATE_ROOM = "UPDATE circles_liveroom SET last_seq = %s, state = %s WHERE session_id = %s"
_INSERT_COMMAND = (
    "INSERT INTO circles_clientcommand (session_id, user_id, client_id, seq, created_at) "
    "VALUES (%s, %s, %s, %s, %s)"
)
_JSON = SessionEvent._meta.get_field("patch")


def _write(statements: list[tuple[str, list]]) -> None:
    """Run INSERT/UPDATE statements without results. On PostgreSQL they go as one statement
    (each but the last in a data-modifying WITH), so one round trip; elsewhere one by one."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(statements) > 1:
            *first, (last, _) = statements
            sql = "WITH " + ", ".join(f"w{i} AS ({q})" for i, (q, _) in enumerate(first)) + " " + last
            cursor.execute(sql, [value for _, params in statements for value in params])
            return
        for sql, params in statements:
            cursor.execute(sql, params)


def _command_row(room: LiveRoom, user_id: int, client_id: str, seq: int, now: datetime) -> tuple[str, list]:
    return _INSERT_COMMAND, [room.pk, user_id, client_id, seq, connection.ops.adapt_datetimefield_value(now)]


def _record(
    room: LiveRoom,
    *,
    kind: str,
    actor_id: int | None,
    patch: dict,
    text: str = "",
    now=None,
    command: str | None = None,
) -> int:
    """Append one event and save the room, with the ClientCommand row of `command` (a client id
    of actor_id's) if one caused it. Caller holds the room lock."""
    now = now or timezone.now()
    room.last_seq += 1
    statements = [
        (
            _INSERT_EVENT,
            [
                room.pk,
                room.last_seq,
                kind,
                actor_id,
                _JSON.get_db_prep_value(patch, connection),
                text,
                connection.ops.adapt_datetimefield_value(now),
            ],
        ),
        (_UPDATE_ROOM, [room.last_seq, _JSON.get_db_prep_value(room.state, connection), room.pk]),
    ]
    if command is not None:
        statements.append(_command_row(room, actor_id, command, room.last_seq, now))
    _write(statements)
    payload = _payload(room.last_seq, kind, actor_id, now, patch, text)
    transaction.on_commit(lambda: broadcast(room.pk, payload))
    return room.last_seq


def apply_event(state: dict, event: dict) -> dict:
    """The client's reducer (room.js mirrors it): merge the patch, append a message, advance seq."""
    if event["seq"] != state["seq"] + 1:
        raise ValueError(f"event {event['seq']} does not follow {state['seq']}")
    new = {**state, **event["patch"], "seq": event["seq"]}
    if "message" in event:
        new["messages"] = [*new["messages"], event["message"]][-SNAPSHOT_MESSAGES:]
    return new


# --- Presence and attendance ------------------------------------------------------------------


def _present(session_id: int) -> list[int]:
    """People with at least one open tab, in the order they arrived."""
    rows = (
        RoomConnection.objects.filter(session_id=session_id)
        .values("user_id")
        .annotate(first=Min("opened_at"))
        .order_by("first", "user_id")
    )
    return [row["user_id"] for row in rows]


def _attendance_open(session_id: int, user_id: int, now: datetime) -> None:
    last = Attendance.objects.filter(session_id=session_id, user_id=user_id).order_by("-joined_at").first()
    if last is not None and last.left_at is None:
        return
    if last is not None and now - last.left_at < ATTENDANCE_MERGE_GAP:
        last.left_at = None
        last.save(update_fields=["left_at"])
        return
    Attendance.objects.create(session_id=session_id, user_id=user_id, joined_at=now)


def connection_open(*, session_id: int, user_id: int, channel_name: str, now: datetime | None = None) -> None:
    """A tab joined the room. The person's first tab makes them present and opens attendance."""
    now = now or timezone.now()
    with transaction.atomic():
        room = _lock_room(session_id)
        before = _present(session_id)
        # A person's place among the present is their first open tab's: a tab opened (or
        # registered again) while they are here takes that time, so their place does not move.
        arrived = RoomConnection.objects.filter(session_id=session_id, user_id=user_id).aggregate(
            first=Min("opened_at")
        )["first"]
        RoomConnection.objects.update_or_create(
            channel_name=channel_name,
            defaults={
                "session_id": session_id,
                "user_id": user_id,
                "opened_at": min(arrived, now) if arrived else now,
                "seen_at": now,
            },
        )
        if room.session.status != CircleSession.Status.ENDED:
            _attendance_open(session_id, user_id, now)
        if user_id not in before:
            _record(
                room,
                kind="presence.joined",
                actor_id=user_id,
                patch={"present": _present(session_id)},
                now=now,
            )


def connection_close(*, channel_name: str, now: datetime | None = None) -> None:
    """A tab left (or went silent). The person's last tab closes their attendance stretch."""
    now = now or timezone.now()
    connection = RoomConnection.objects.filter(channel_name=channel_name).first()
    if connection is None:
        return
    with transaction.atomic():
        room = _lock_room(connection.session_id)
        deleted, _ = RoomConnection.objects.filter(channel_name=channel_name).delete()
        if not deleted:
            return
        present = _present(room.pk)
        if connection.user_id in present:
            # Their other tabs keep the closed one's arrival time, and so their place.
            RoomConnection.objects.filter(
                session_id=room.pk, user_id=connection.user_id, opened_at__gt=connection.opened_at
            ).update(opened_at=connection.opened_at)
            return
        Attendance.objects.filter(
            session_id=room.pk, user_id=connection.user_id, left_at__isnull=True
        ).update(left_at=now)
        _record(room, kind="presence.left", actor_id=connection.user_id, patch={"present": present}, now=now)


def heartbeat(*, session_id: int, user_id: int, channel_name: str, now: datetime | None = None) -> int:
    """Keep a tab's connection fresh; re-register it if a sweep removed it while the tab lived on.

    Returns the room's last seq, which the pong carries: a client behind it missed a bell (an
    event committed while the broadcast failed, or a commit whose outcome the server never
    learned) and asks for the rest, so no quiet room stays out of date for longer than a ping.
    """
    now = now or timezone.now()
    _require_member(session_id, user_id)
    if not RoomConnection.objects.filter(channel_name=channel_name).update(seen_at=now):
        connection_open(session_id=session_id, user_id=user_id, channel_name=channel_name, now=now)
    return LiveRoom.objects.filter(pk=session_id).values_list("last_seq", flat=True).first() or 0


def connections_sweep(*, now: datetime | None = None) -> int:
    """Close connections left behind by a server that died. Safe to run twice."""
    now = now or timezone.now()
    stale = RoomConnection.objects.filter(seen_at__lt=now - CONNECTION_STALE_AFTER).values_list(
        "channel_name", flat=True
    )
    names = list(stale)
    for name in names:
        connection_close(channel_name=name, now=now)
    return len(names)


# --- Commands ---------------------------------------------------------------------------------


@dataclass
class _Context:
    room: LiveRoom
    membership: Membership
    now: datetime
    patch: dict = field(default_factory=dict)
    text: str = ""
    session_fields: list = field(default_factory=list)

    @property
    def session(self) -> CircleSession:
        return self.room.session

    @property
    def state(self) -> dict:
        return self.room.state

    @property
    def me(self) -> int:
        return self.membership.user_id

    def set(self, key: str, value) -> None:
        if self.state.get(key) != value:
            self.state[key] = value
            self.patch[key] = value

    def require_facilitator(self) -> None:
        if self.session.facilitator_id != self.me and not self.membership.is_circle_facilitator:
            raise LiveError("forbidden", "Only today's facilitator can do that.")

    def require_status(self, *statuses: str) -> None:
        if self.session.status not in statuses:
            words = {"scheduled": "has not started yet", "live": "is under way", "ended": "has ended"}
            raise LiveError("wrong_state", f"The session {words.get(self.session.status, 'is not open')}.")

    def require_live(self) -> None:
        self.require_status(CircleSession.Status.LIVE)

    def require_open(self) -> None:
        self.require_status(CircleSession.Status.SCHEDULED, CircleSession.Status.LIVE)

    def set_session(self, name: str, value, patch_key: str) -> None:
        setattr(self.session, name, value)
        self.session_fields.append(name)
        self.patch[patch_key] = value

    def rounds(self) -> list:
        return list(self.session.circle.template.rounds.all())

    def timer(self) -> dict:
        rounds = self.rounds()
        minutes = rounds[self.state["round"]].minutes_per_speaker if rounds else 3
        return {"started_at": self.now.isoformat(), "seconds": minutes * 60}

    def begin_round(self, index: int) -> None:
        away = set(self.state["away"])
        self.set("round", index)
        self.set("holder", None)
        self.set("timer", None)
        self.set("spoken", [])
        self.set("hands", [])
        self.set("order", [p for p in _present(self.room.pk) if p not in away])


def _session_start(ctx: _Context) -> str:
    ctx.require_facilitator()
    ctx.require_status(CircleSession.Status.SCHEDULED)
    ctx.set_session("status", CircleSession.Status.LIVE, "status")
    ctx.begin_round(0)
    return "session.started"


def _session_end(ctx: _Context) -> str:
    ctx.require_facilitator()
    ctx.require_open()
    _end(ctx)
    return "session.ended"


def _end(ctx: _Context) -> None:
    """Close the session: attendance stops, and chat text goes unless the organisation keeps it."""
    ctx.set_session("status", CircleSession.Status.ENDED, "status")
    # Managers' insights count the session once its attendance is final: refresh after commit.
    rollup_refresh_for_session.delay_on_commit(ctx.room.pk)
    ctx.set("holder", None)
    ctx.set("timer", None)
    Attendance.objects.filter(session_id=ctx.room.pk, left_at__isnull=True).update(left_at=ctx.now)
    if ctx.session.circle.organisation.chat_retention_days == 0:
        _purge_chat(ctx.room.pk)
        ctx.patch["messages"] = []


def _move_round(ctx: _Context, step: int, expected: int) -> str:
    ctx.require_facilitator()
    ctx.require_live()
    if expected != ctx.state["round"]:
        raise LiveError("stale", "The round has already moved on. Your screen is catching up.")
    target = ctx.state["round"] + step
    if not 0 <= target < len(ctx.rounds()):
        raise LiveError("invalid", "There is no round that way.")
    ctx.begin_round(target)
    return "round.moved"


def _turn_accept(ctx: _Context) -> str:
    ctx.require_live()
    order = ctx.state["order"]
    if ctx.state["holder"] is not None or not order or order[0] != ctx.me:
        raise LiveError("not_your_turn", "The talking piece is not being offered to you right now.")
    ctx.set("order", order[1:])
    ctx.set("holder", ctx.me)
    ctx.set("timer", ctx.timer())
    return "turn.accepted"


def _turn_pass(ctx: _Context) -> str:
    ctx.require_live()
    if ctx.me not in ctx.state["order"]:
        raise LiveError("not_your_turn", "You are not waiting to speak in this round.")
    ctx.set("order", [p for p in ctx.state["order"] if p != ctx.me])
    ctx.set("spoken", [*ctx.state["spoken"], ctx.me])
    return "turn.passed"


def _turn_finish(ctx: _Context) -> str:
    ctx.require_live()
    holder = ctx.state["holder"]
    if holder is None:
        raise LiveError("not_your_turn", "Nobody is holding the talking piece.")
    if holder != ctx.me:
        ctx.require_facilitator()
    ctx.set("spoken", [*ctx.state["spoken"], holder])
    ctx.set("holder", None)
    ctx.set("timer", None)
    return "turn.finished"


def _piece_give(ctx: _Context, to: int) -> str:
    ctx.require_facilitator()
    ctx.require_live()
    if to not in _present(ctx.room.pk):
        raise LiveError("invalid", "You can only pass the piece to someone who is here.")
    holder = ctx.state["holder"]
    if holder is not None and holder not in ctx.state["spoken"]:
        ctx.set("spoken", [*ctx.state["spoken"], holder])
    ctx.set("order", [p for p in ctx.state["order"] if p != to])
    ctx.set("hands", [p for p in ctx.state["hands"] if p != to])
    ctx.set("holder", to)
    ctx.set("timer", ctx.timer())
    return "piece.given"


def _hand(ctx: _Context, raised: bool) -> str:
    ctx.require_live()
    hands = [p for p in ctx.state["hands"] if p != ctx.me]
    ctx.set("hands", [*hands, ctx.me] if raised else hands)
    return "hand.raised" if raised else "hand.lowered"


def _order_set(ctx: _Context, order: list) -> str:
    ctx.require_facilitator()
    ctx.require_live()
    if sorted(order) != sorted(ctx.state["order"]):
        raise LiveError("invalid", "The new order must list exactly the people waiting to speak.")
    ctx.set("order", order)
    return "order.changed"


def _order_shuffle(ctx: _Context) -> str:
    ctx.require_facilitator()
    ctx.require_live()
    order = list(ctx.state["order"])
    random.shuffle(order)
    ctx.set("order", order)
    return "order.changed"


def _facilitation_hand(ctx: _Context, to: int) -> str:
    ctx.require_facilitator()
    ctx.require_open()
    if _membership(ctx.room.pk, to) is None:
        raise LiveError("invalid", "Facilitation can only go to someone in this circle.")
    if to != ctx.session.facilitator_id:
        ctx.set_session("facilitator_id", to, "facilitator")
    return "facilitation.handed"


def _message_text(text: str) -> str | None:
    """The text a chat line is posted with, or None if it cannot be posted."""
    text = text.strip()
    return text if 0 < len(text) <= MESSAGE_MAX_CHARS else None


def _message_post(ctx: _Context, text: str) -> str:
    ctx.require_open()
    ctx.text = _message_text(text)
    if ctx.text is None:
        raise LiveError("invalid", f"A message is 1 to {MESSAGE_MAX_CHARS} characters.")
    return "message.posted"


def _flag(ctx: _Context, key: str, on: bool) -> str:
    ctx.require_open()
    others = [p for p in ctx.state[key] if p != ctx.me]
    ctx.set(key, [*others, ctx.me] if on else others)
    return f"{key}.{'set' if on else 'cleared'}"


HANDLERS = {
    "session.start": lambda ctx: _session_start(ctx),
    "session.end": lambda ctx: _session_end(ctx),
    "round.next": lambda ctx, round: _move_round(ctx, 1, round),
    "round.previous": lambda ctx, round: _move_round(ctx, -1, round),
    "turn.accept": lambda ctx: _turn_accept(ctx),
    "turn.pass": lambda ctx: _turn_pass(ctx),
    "turn.finish": lambda ctx: _turn_finish(ctx),
    "piece.give": lambda ctx, to: _piece_give(ctx, to),
    "hand.raise": lambda ctx: _hand(ctx, True),
    "hand.lower": lambda ctx: _hand(ctx, False),
    "order.set": lambda ctx, order: _order_set(ctx, order),
    "order.shuffle": lambda ctx: _order_shuffle(ctx),
    "facilitation.hand": lambda ctx, to: _facilitation_hand(ctx, to),
    "message.post": lambda ctx, text: _message_post(ctx, text),
    "moment.set": lambda ctx, on: _flag(ctx, "moment", on),
    "away.set": lambda ctx, on: _flag(ctx, "away", on),
}


def perform(*, session_id: int, user_id: int, command: Command, now: datetime | None = None) -> dict:
    """Apply one client command once. Returns {"seq", "duplicate"}; raises LiveError if refused.

    A command whose id was already applied returns the seq it produced then, without applying it
    again. A command that changes nothing is acknowledged with the current seq and no event.
    """
    now = now or timezone.now()
    try:
        return _apply(session_id, user_id, command, now)
    except IntegrityError:
        # The same id, sent from another tab by a command that changed nothing (so last_seq did
        # not move), committed while this one waited for the room: the ids read before the wait
        # missed it and the insert hit the unique constraint. Asked again, it is a resend.
        return _apply(session_id, user_id, command, now)


def _apply(session_id: int, user_id: int, command: Command, now: datetime) -> dict:
    # Only in autocommit: inside a caller's transaction a failed statement would abort it.
    if (
        command.type == "message.post"
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
    ):
        text = _message_text(command.fields["text"])
        seq = _post_at_once(session_id, user_id, command.client_id, text, now) if text else None
        if seq is not None:
            return {"seq": seq, "duplicate": False}
    with transaction.atomic():
        room, membership, done = _lock_for_command(session_id, user_id, command.client_id)
        if membership is None:
            raise _not_member()
        if done is not None:
            return {"seq": done, "duplicate": True}
        ctx = _Context(room=room, membership=membership, now=now)
        kind = HANDLERS[command.type](ctx, **command.fields)
        if ctx.session_fields:
            ctx.session.updated_at = now
            ctx.session.save(update_fields=[*ctx.session_fields, "updated_at"])
        if ctx.patch or ctx.text:
            seq = _record(
                room,
                kind=kind,
                actor_id=user_id,
                patch=ctx.patch,
                text=ctx.text,
                now=now,
                command=command.client_id,
            )
        else:
            seq = room.last_seq
            _write([_command_row(room, user_id, command.client_id, seq, now)])
    return {"seq": seq, "duplicate": False}


_ACTIVE_MEMBER = (  # m is the person's membership of session s's circle; parameter: user id
    "m.circle_id = s.circle_id AND m.user_id = %s AND m.left_at IS NULL "
    "AND EXISTS (SELECT 1 FROM accounts_user u WHERE u.id = m.user_id AND u.is_active)"
)
_SAME_COMMAND = "c.session_id = r.session_id AND c.user_id = %s AND c.client_id = %s"
# The room's last_seq as the statement's snapshot saw it. A statement that waited for the room's
# lock gets the room row as the writer before it left it, but every other table (the session's
# status, memberships, command ids) as they were when it began: a line queued behind
# `session.end` would still see the session open. So a statement whose locked row no longer
# matches this knows that it waited behind a writer and that its other reads may be stale.
_SEQ_WHEN_BEGUN = "(SELECT l.last_seq FROM circles_liveroom l WHERE l.session_id = r.session_id)"
# One statement instead of three ORM queries (room lock, membership, command id): what perform()
# needs to decide, read under the room's lock (read again if it waited for that lock). At most
# one row: one room per session, one active membership per person and circle, one command per
# id. SQLite has no FOR UPDATE; its transactions take the database's write lock when they begin
# (transaction_mode IMMEDIATE).
_LOCK_FOR_COMMAND = (
    "SELECT r.last_seq, r.state, s.circle_id, s.status, s.facilitator_id, m.id, m.role, c.seq, "  # noqa: S608  # nosec B608  # constant fragments, values bound
    f"{_SEQ_WHEN_BEGUN} "
    "FROM circles_liveroom r "
    "JOIN circles_circlesession s ON s.id = r.session_id "
    f"LEFT JOIN circles_membership m ON {_ACTIVE_MEMBER} "
    f"LEFT JOIN circles_clientcommand c ON {_SAME_COMMAND} "
    "WHERE r.session_id = %s"
)


def _lock_for_command(session_id: int, user_id: int, client_id: str) -> tuple:
    """Lock the session's room; return it (with its session's status, circle and facilitator
    loaded), the person's active membership or None, and the seq of an earlier command with this
    id or None. Caller is inside transaction.atomic."""
    sql = _LOCK_FOR_COMMAND
    if connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF r"
    params = [user_id, user_id, client_id, session_id]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            _lock_room(session_id)  # the room's first use: create it
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row[0] != row[-1]:
            # It waited behind another write to the room: read again, now under our lock, so
            # the session, membership and command id are as that write left them.
            cursor.execute(sql, params)
            row = cursor.fetchone()
    last_seq, state, circle_id, status, facilitator_id, membership_id, role, done, _ = row
    db = connection.alias
    session = CircleSession.from_db(
        db, ["id", "circle_id", "status", "facilitator_id"], [session_id, circle_id, status, facilitator_id]
    )
    room = LiveRoom.from_db(db, ["session_id", "last_seq"], [session_id, last_seq])
    room.session = session
    room.state = {**EMPTY_STATE, **LiveRoom._meta.get_field("state").from_db_value(state, None, connection)}
    membership = None
    if membership_id is not None:
        membership = Membership.from_db(
            db, ["id", "circle_id", "user_id", "role"], [membership_id, circle_id, user_id, role]
        )
    return room, membership, done


# A chat line, the command rooms send most, as one statement in autocommit (PostgreSQL only: a
# data-modifying WITH): instead of BEGIN, the locking read, the writes and COMMIT, four round
# trips and most of a command's CPU. It claims the next seq under the room row's lock, as every
# write does, and writes the event and the command id only if the session is open, the person
# an active member and the id new. Any other case (no room yet, not allowed, a resent id, or a
# wait behind another write to the room, after which those checks may be stale) changes nothing
# and returns no row; perform() then takes its usual path, which says why.
_POST_AT_ONCE = (
    "WITH room AS ("  # noqa: S608  # nosec B608  # constant fragments, values bound
    "UPDATE circles_liveroom r SET last_seq = r.last_seq + 1 FROM circles_circlesession s "
    "WHERE r.session_id = %s AND s.id = r.session_id AND s.status IN (%s, %s) "
    f"AND EXISTS (SELECT 1 FROM circles_membership m WHERE {_ACTIVE_MEMBER}) "
    f"AND NOT EXISTS (SELECT 1 FROM circles_clientcommand c WHERE {_SAME_COMMAND}) "
    f"AND r.last_seq = {_SEQ_WHEN_BEGUN} "
    "RETURNING r.session_id, r.last_seq), "
    "event AS (INSERT INTO circles_sessionevent (session_id, seq, kind, actor_id, patch, text, created_at) "
    "SELECT r.session_id, r.last_seq, %s, %s, '{}', %s, %s FROM room r) "
    "INSERT INTO circles_clientcommand (session_id, user_id, client_id, seq, created_at) "
    "SELECT r.session_id, %s, %s, r.last_seq, %s FROM room r RETURNING seq"
)


def _post_at_once(session_id: int, user_id: int, client_id: str, text: str, now: datetime) -> int | None:
    """Post a chat line in one statement; its seq, or None if perform() must take its usual path."""
    at = connection.ops.adapt_datetimefield_value(now)
    open_ = (CircleSession.Status.SCHEDULED.value, CircleSession.Status.LIVE.value)
    params = [session_id, *open_, user_id, user_id, client_id, "message.posted", user_id, text, at]
    with connection.cursor() as cursor:
        cursor.execute(_POST_AT_ONCE, [*params, user_id, client_id, at])
        row = cursor.fetchone()
    if row is None:
        return None
    payload = _payload(row[0], "message.posted", user_id, now, {}, text)
    transaction.on_commit(lambda: broadcast(session_id, payload))
    return row[0]


# --- Reads ------------------------------------------------------------------------------------


def _snapshot(room: LiveRoom, user_id: int, now: datetime) -> dict:
    session = room.session
    rounds = session.circle.template.rounds.all()
    people = Membership.objects.filter(circle_id=session.circle_id, left_at__isnull=True).select_related(
        "user"
    )
    messages = SessionEvent.objects.filter(session_id=room.pk, kind="message.posted").exclude(text="")
    return {
        "seq": room.last_seq,
        **{key: room.state[key] for key in EMPTY_STATE},
        "status": session.status,
        "facilitator": session.facilitator_id,
        "present": _present(room.pk),
        "messages": [_message(e) for e in reversed(messages.order_by("-seq")[:SNAPSHOT_MESSAGES])],
        "rounds": [
            {"title": r.title, "prompt": r.prompt, "kind": r.kind, "seconds": r.minutes_per_speaker * 60}
            for r in rounds
        ],
        "people": {
            str(m.user_id): {"name": m.user.display_name, "pronouns": m.user.pronouns, "role": m.role}
            for m in people
        },
        "me": user_id,
        "now": now.isoformat(),
    }


def snapshot(*, session_id: int, user_id: int, now: datetime | None = None) -> dict:
    """The whole room as this member may see it. Taken under the room lock so it is one moment."""
    with transaction.atomic():
        room = _lock_room(session_id)
        _require_member(session_id, user_id)
        return _snapshot(room, user_id, now or timezone.now())


def catch_up(*, session_id: int, user_id: int, last_seq: int | None) -> dict:
    """What a client that has applied up to `last_seq` needs: the events after it, or a snapshot."""
    with transaction.atomic():
        room = _lock_room(session_id)
        _require_member(session_id, user_id)
        if last_seq is None or last_seq > room.last_seq or room.last_seq - last_seq > REPLAY_LIMIT:
            return {"type": "snapshot", "snapshot": _snapshot(room, user_id, timezone.now())}
        events = SessionEvent.objects.filter(session_id=room.pk, seq__gt=last_seq).order_by("seq")
        return {"type": "events", "events": [event_payload(e) for e in events]}


# --- Ending, retention, removal ---------------------------------------------------------------


def _purge_chat(session_id: int) -> int:
    return (
        SessionEvent.objects.filter(session_id=session_id, kind="message.posted")
        .exclude(text="")
        .update(text="")
    )


def sessions_end_overdue(*, now: datetime | None = None) -> list[int]:
    """End every live session whose scheduled end plus grace has passed. Safe to run twice."""
    now = now or timezone.now()
    due = CircleSession.objects.filter(
        status=CircleSession.Status.LIVE, ends_at__lt=now - GRACE_AFTER_END
    ).values_list("pk", flat=True)
    ended = []
    for session_id in list(due):
        with transaction.atomic():
            room = _lock_room(session_id)
            if room.session.status != CircleSession.Status.LIVE:
                continue
            ctx = _Context(room=room, membership=None, now=now)
            _end(ctx)
            ctx.session.updated_at = now
            ctx.session.save(update_fields=[*ctx.session_fields, "updated_at"])
            _record(room, kind="session.ended", actor_id=None, patch=ctx.patch, now=now)
            ended.append(session_id)
    return ended


def rooms_sweep(*, now: datetime | None = None) -> dict:
    """The periodic housekeeping of live rooms: connections of dead servers, overdue sessions."""
    now = now or timezone.now()
    return {"connections": connections_sweep(now=now), "ended": len(sessions_end_overdue(now=now))}


def chat_purge_expired(*, now: datetime | None = None) -> list[int]:
    """Blank chat text in sessions whose organisation's retention has run out. Safe to run twice.

    The retention clock starts when the session ended (its session.ended event).
    """
    now = now or timezone.now()
    candidates = (
        SessionEvent.objects.filter(kind="message.posted", session__status=CircleSession.Status.ENDED)
        .exclude(text="")
        .values_list("session_id", flat=True)
        .distinct()
    )
    purged = []
    for session_id in list(candidates):
        with transaction.atomic():
            room = _lock_room(session_id)
            ended = (
                SessionEvent.objects.filter(session_id=session_id, kind="session.ended")
                .order_by("-seq")
                .first()
            )
            days = room.session.circle.organisation.chat_retention_days
            ended_at = ended.created_at if ended else room.session.ends_at
            if ended_at + timedelta(days=days) > now:
                continue
            _purge_chat(session_id)
            _record(room, kind="chat.purged", actor_id=None, patch={"messages": []}, now=now)
            purged.append(session_id)
    return purged


def _force_close(user_id: int, circle_id: int | None) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(
            user_group(user_id), {"type": "live.force_close", "circle_id": circle_id}
        )
    except Exception:
        # Removal is committed; the next message from that socket is refused by the membership check.
        logger.exception("Could not disconnect user %s", user_id)


def disconnect_user_from_circle(user_id: int, circle_id: int) -> None:
    """Close this person's sockets in the circle's rooms within seconds. Call inside or after the
    removal's transaction: the message goes out once it commits."""
    transaction.on_commit(lambda: _force_close(user_id, circle_id))


def disconnect_user(user_id: int) -> None:
    """Close every live socket this person has (they were deactivated). Sent after commit."""
    transaction.on_commit(lambda: _force_close(user_id, None))
