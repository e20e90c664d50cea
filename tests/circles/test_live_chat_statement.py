"""A chat line on PostgreSQL is posted by one statement in autocommit (circles.live._POST_AT_ONCE):
it must write and broadcast what the usual path would, leave every case it declines to that path,
and never act on reads made stale by waiting for the room's lock."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from circles import live
from circles.models import CircleSession, ClientCommand, LiveRoom, Membership, SessionEvent
from tests.circles.live_support import make_session
from tests.factories import make_circle, make_person

# The statement runs only in autocommit, so these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def needs_postgres(db):
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement chat line is PostgreSQL's; set DATABASE_URL")


@pytest.fixture
def room(people, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    people.circle = make_circle(people.facilitator, members=[people.member])
    people.session = make_session(people.circle, facilitator=people.facilitator)
    # The room row exists once someone has joined; the statement only ever updates it.
    live.connection_open(session_id=people.session.pk, user_id=people.member.pk, channel_name="tab")
    return people


def post(room, user, text, client_id="line-1", now=None):
    command = live.Command(type="message.post", client_id=client_id, fields={"text": text})
    return live.perform(session_id=room.session.pk, user_id=user.pk, command=command, now=now)


def sending(room, type_, client_id, **fields):
    command = live.Command(type=type_, client_id=client_id, fields=fields)
    return lambda: live.perform(session_id=room.session.pk, user_id=room.member.pk, command=command)


def kinds_after_arrival(session) -> list:
    return list(SessionEvent.objects.filter(session=session, seq__gt=1).values_list("kind", flat=True))


def chat(session) -> list:
    return list(
        SessionEvent.objects.filter(session=session, kind="message.posted").values_list("seq", "text")
    )


@pytest.mark.parametrize("status", [CircleSession.Status.SCHEDULED, CircleSession.Status.LIVE])
def test_a_chat_line_is_one_statement_and_broadcasts_what_a_replay_shows(room, monkeypatch, status):
    CircleSession.objects.filter(pk=room.session.pk).update(status=status)
    sent = []
    monkeypatch.setattr(live, "broadcast", lambda session_id, payload: sent.append((session_id, payload)))
    with CaptureQueriesContext(connection) as queries:
        result = post(room, room.member, "  thank you all  ")

    assert [q["sql"][:36] for q in queries] == ["WITH room AS (UPDATE circles_liveroo"]
    assert result == {"seq": 2, "duplicate": False}  # 1 is the member's arrival
    event = SessionEvent.objects.get(session=room.session, seq=2)
    assert (event.kind, event.actor_id, event.patch, event.text) == (
        "message.posted",
        room.member.pk,
        {},
        "thank you all",
    )
    assert sent == [(room.session.pk, live.event_payload(event))]
    assert ClientCommand.objects.get(session=room.session, client_id="line-1").seq == 2
    assert LiveRoom.objects.get(pk=room.session.pk).last_seq == 2
    replayed = live.catch_up(session_id=room.session.pk, user_id=room.member.pk, last_seq=1)["events"]
    assert replayed == [sent[0][1]]


def test_a_chat_line_writes_and_broadcasts_exactly_what_the_usual_path_does(room, monkeypatch):
    other = make_session(room.circle, facilitator=room.facilitator, starts_in=timedelta(days=1))
    live.connection_open(session_id=other.pk, user_id=room.member.pk, channel_name="tab-2")
    sent = []
    monkeypatch.setattr(live, "broadcast", lambda session_id, payload: sent.append(payload))
    now = timezone.now()
    at_once = post(room, room.member, " same words ", now=now)
    monkeypatch.setattr(live, "_post_at_once", lambda *args: None)
    command = live.Command(type="message.post", client_id="line-1", fields={"text": " same words "})
    usual = live.perform(session_id=other.pk, user_id=room.member.pk, command=command, now=now)

    assert at_once == usual
    assert sent[0] == sent[1]
    fields = ("seq", "kind", "actor_id", "patch", "text", "created_at")
    rows = [
        SessionEvent.objects.filter(session_id=pk).values(*fields).last()
        for pk in (room.session.pk, other.pk)
    ]
    assert rows[0] == rows[1]
    commands = [
        ClientCommand.objects.filter(session_id=pk).values("user_id", "client_id", "seq").get()
        for pk in (room.session.pk, other.pk)
    ]
    assert commands[0] == commands[1]


def test_a_resent_line_is_answered_with_the_seq_it_got_and_not_posted_again(room):
    first = post(room, room.member, "once")
    again = post(room, room.member, "once")
    assert again == {"seq": first["seq"], "duplicate": True}
    assert chat(room.session) == [(first["seq"], "once")]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("ended", "wrong_state"),
        ("left", "not_member"),
        ("deactivated", "not_member"),
        ("elsewhere", "not_member"),
        ("blank", "invalid"),
    ],
)
def test_a_line_the_statement_declines_is_refused_with_the_usual_reason_and_writes_nothing(
    room, change, code
):
    author, text = room.member, "hello"
    if change == "ended":
        CircleSession.objects.filter(pk=room.session.pk).update(status=CircleSession.Status.ENDED)
    elif change == "left":
        Membership.objects.filter(user=room.member, circle=room.circle).update(left_at=timezone.now())
    elif change == "deactivated":
        type(room.member).objects.filter(pk=room.member.pk).update(is_active=False)
    elif change == "elsewhere":
        author = make_person(room.org, "Elsie Elsewhere")
        make_circle(room.facilitator, name="Another circle", members=[author])
    else:
        text = "   "
    with pytest.raises(live.LiveError) as refused:
        post(room, author, text)
    assert refused.value.code == code
    assert LiveRoom.objects.get(pk=room.session.pk).last_seq == 1
    assert chat(room.session) == []
    assert not ClientCommand.objects.exists()


def test_a_line_in_a_room_nobody_opened_yet_creates_the_room(people):
    circle = make_circle(people.facilitator, members=[people.member])
    session = make_session(circle, facilitator=people.facilitator)
    command = live.Command(type="message.post", client_id="first", fields={"text": "early"})
    assert live.perform(session_id=session.pk, user_id=people.member.pk, command=command)["seq"] == 1
    assert LiveRoom.objects.get(pk=session.pk).last_seq == 1


def test_inside_a_callers_transaction_the_line_takes_the_usual_path(room):
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        result = post(room, room.member, "inside")
    assert result == {"seq": 2, "duplicate": False}
    assert not any(q["sql"].startswith("WITH room AS") for q in queries)
    assert chat(room.session) == [(2, "inside")]


def while_the_room_is_locked(session, change, calls):
    """Hold the room's lock while `change()` runs in that transaction; start `calls` (one thread
    each) and commit only once every one of them waits for the lock. Returns what they
    returned and the codes of the LiveErrors they raised, in any order."""
    locked, release = threading.Event(), threading.Event()
    answers, refusals, errors = [], [], []

    def hold():
        try:
            with transaction.atomic():
                LiveRoom.objects.select_for_update().get(pk=session.pk)
                change()
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    def run(call):
        try:
            answers.append(call())
        except live.LiveError as refused:
            refusals.append(refused.code)
        except Exception as error:  # noqa: BLE001  (reported by the assertion below)
            errors.append(error)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    senders = [threading.Thread(target=run, args=(call,)) for call in calls]
    for sender in senders:
        sender.start()
    waiting = 0
    for _ in range(200):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND state = 'active'"
            )
            waiting = cursor.fetchone()[0]
        if waiting == len(calls):
            break
        time.sleep(0.05)
    release.set()
    for thread in [holder, *senders]:
        thread.join(10)
    assert waiting == len(calls)
    assert errors == []
    return answers, refusals


@pytest.mark.parametrize("kind", ["message.post", "hand.raise"])
def test_a_command_queued_behind_the_end_of_the_session_is_refused(room, kind):
    """The end commits while the command waits for the room: its reads of the session from
    before the wait said "live"; what it does must follow the session as the end left it."""
    CircleSession.objects.filter(pk=room.session.pk).update(status=CircleSession.Status.LIVE)

    def end():
        CircleSession.objects.filter(pk=room.session.pk).update(status=CircleSession.Status.ENDED)
        LiveRoom.objects.filter(pk=room.session.pk).update(last_seq=F("last_seq") + 1)

    fields = {"text": "after the end"} if kind == "message.post" else {}
    answers, refusals = while_the_room_is_locked(room.session, end, [sending(room, kind, "late", **fields)])

    assert (answers, refusals) == ([], ["wrong_state"])
    assert (
        not SessionEvent.objects.filter(session=room.session, actor=room.member)
        .exclude(kind="presence.joined")
        .exists()
    )
    assert not ClientCommand.objects.exists()


def test_the_same_line_from_two_tabs_at_once_is_posted_once(room):
    line = sending(room, "message.post", "same", text="hello")
    answers, refusals = while_the_room_is_locked(room.session, lambda: None, [line, line])

    assert refusals == []
    assert sorted(answer["duplicate"] for answer in answers) == [False, True]
    assert answers[0]["seq"] == answers[1]["seq"] == 2
    assert chat(room.session) == [(2, "hello")]


@pytest.mark.parametrize(("kind", "fields"), [("message.post", {"text": "hello"}), ("hand.raise", {})])
def test_an_id_taken_by_a_command_that_changed_nothing_while_this_one_waited_is_a_resend(room, kind, fields):
    """A command that changes nothing stores its id without moving last_seq, so a command with
    the same id waiting behind it reads the ids from before and its insert hits the unique
    constraint (the one statement's and the usual path's alike); perform() asks again."""
    CircleSession.objects.filter(pk=room.session.pk).update(status=CircleSession.Status.LIVE)

    def store_the_id():
        ClientCommand.objects.create(session=room.session, user=room.member, client_id="reused", seq=1)

    answers, refusals = while_the_room_is_locked(
        room.session, store_the_id, [sending(room, kind, "reused", **fields)]
    )

    assert (answers, refusals) == ([{"seq": 1, "duplicate": True}], [])
    assert kinds_after_arrival(room.session) == []


def test_the_overdue_sweep_queued_behind_the_facilitators_end_does_not_end_it_again(room):
    """The same stale read in the sweep's lock of the room would record a second session.ended."""
    ended_at = timezone.now() - live.GRACE_AFTER_END - timedelta(minutes=1)
    CircleSession.objects.filter(pk=room.session.pk).update(
        status=CircleSession.Status.LIVE, starts_at=ended_at - timedelta(hours=1), ends_at=ended_at
    )
    facilitator = live.Command(type="session.end", client_id="end", fields={})

    def end():
        live.perform(session_id=room.session.pk, user_id=room.facilitator.pk, command=facilitator)

    answers, refusals = while_the_room_is_locked(room.session, end, [live.sessions_end_overdue])

    assert (answers, refusals) == ([[]], [])
    assert SessionEvent.objects.filter(session=room.session, kind="session.ended").count() == 1
