"""A chat line on PostgreSQL is posted by one statement (circles.live._POST_AT_ONCE): it must write
and broadcast what the usual path would, and leave every case it declines to that path."""

import threading
import time

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from circles import live
from circles.models import CircleSession, ClientCommand, LiveRoom, Membership, SessionEvent
from tests.circles.live_support import make_session
from tests.factories import make_circle, make_org, make_person


@pytest.fixture(autouse=True)
def needs_postgres(db):
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement chat line is PostgreSQL's; set DATABASE_URL")


@pytest.fixture
def room(people):
    circle = make_circle(people.facilitator, members=[people.member])
    people.session = make_session(circle, facilitator=people.facilitator)
    people.circle = circle
    # The room row exists once someone has joined; the statement only ever updates it.
    live.connection_open(session_id=people.session.pk, user_id=people.member.pk, channel_name="tab")
    return people


def post(room, user, text, client_id="line-1"):
    command = live.Command(type="message.post", client_id=client_id, fields={"text": text})
    return live.perform(session_id=room.session.pk, user_id=user.pk, command=command)


def test_a_chat_line_is_one_statement_and_broadcasts_what_a_replay_shows(
    room, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(live, "broadcast", lambda session_id, payload: sent.append((session_id, payload)))
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        result = post(room, room.member, "  thank you all  ")

    assert len(queries) == 1
    assert queries[0]["sql"].startswith("WITH room AS (UPDATE circles_liveroom")
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
    assert live.catch_up(session_id=room.session.pk, user_id=room.member.pk, last_seq=1)["events"] == [
        sent[0][1]
    ]


def test_a_resent_line_is_answered_with_the_seq_it_got_and_not_posted_again(room):
    first = post(room, room.member, "once")
    again = post(room, room.member, "once")
    assert again == {"seq": first["seq"], "duplicate": True}
    assert SessionEvent.objects.filter(kind="message.posted").count() == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("ended", "wrong_state"),
        ("left", "not_member"),
        ("deactivated", "not_member"),
        ("blank", "invalid"),
    ],
)
def test_a_line_the_statement_declines_is_refused_with_the_usual_reason_and_writes_nothing(
    room, change, code
):
    text = "hello"
    if change == "ended":
        CircleSession.objects.filter(pk=room.session.pk).update(status=CircleSession.Status.ENDED)
    elif change == "left":
        Membership.objects.filter(user=room.member, circle=room.circle).update(left_at=room.session.starts_at)
    elif change == "deactivated":
        type(room.member).objects.filter(pk=room.member.pk).update(is_active=False)
    else:
        text = "   "
    with pytest.raises(live.LiveError) as refused:
        post(room, room.member, text)
    assert refused.value.code == code
    assert LiveRoom.objects.get(pk=room.session.pk).last_seq == 1
    assert not SessionEvent.objects.filter(kind="message.posted").exists()
    assert not ClientCommand.objects.exists()


def test_a_line_in_a_room_nobody_opened_yet_creates_the_room(people):
    circle = make_circle(people.facilitator, members=[people.member])
    session = make_session(circle, facilitator=people.facilitator)
    command = live.Command(type="message.post", client_id="first", fields={"text": "early"})
    assert live.perform(session_id=session.pk, user_id=people.member.pk, command=command)["seq"] == 1
    assert LiveRoom.objects.get(pk=session.pk).last_seq == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_line_from_two_tabs_at_once_is_posted_once(transactional_db, settings):
    """Both wait behind the room's lock; the second then finds the first's command id taken (a
    unique violation in the one statement) and is answered as a resend."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    org = make_org()
    fran, alice = make_person(org, "Fran"), make_person(org, "Alice")
    session = make_session(make_circle(fran, members=[alice]), facilitator=fran)
    live.connection_open(session_id=session.pk, user_id=alice.pk, channel_name="tab")
    locked, release = threading.Event(), threading.Event()
    answers, errors = [], []

    def hold_the_room():
        try:
            with transaction.atomic():
                LiveRoom.objects.select_for_update().get(pk=session.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    def post_from_a_tab():
        command = live.Command(type="message.post", client_id="same", fields={"text": "hello"})
        try:
            answers.append(live.perform(session_id=session.pk, user_id=alice.pk, command=command))
        except Exception as error:  # noqa: BLE001  (reported by the assertion below)
            errors.append(error)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_room)
    holder.start()
    assert locked.wait(10)
    tabs = [threading.Thread(target=post_from_a_tab) for _ in range(2)]
    for tab in tabs:
        tab.start()
    waiting = 0
    for _ in range(100):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE 'WITH room AS%%'"
            )
            waiting = cursor.fetchone()[0]
        if waiting == 2:
            break
        time.sleep(0.05)
    release.set()
    for thread in [holder, *tabs]:
        thread.join(10)

    assert waiting == 2
    assert errors == []
    assert sorted(answer["duplicate"] for answer in answers) == [False, True]
    assert answers[0]["seq"] == answers[1]["seq"] == 2
    assert list(SessionEvent.objects.filter(session=session).values_list("seq", "kind")) == [
        (1, "presence.joined"),
        (2, "message.posted"),
    ]
