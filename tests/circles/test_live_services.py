"""circles.live without a socket: presence, attendance, ending, retention, sweeping, seq under load."""

import itertools
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from circles import live
from circles.models import Attendance, CircleSession, Membership, RoomConnection, SessionEvent
from tests.circles.live_support import make_session
from tests.factories import make_circle, make_person

_ids = itertools.count()


@pytest.fixture
def room(people, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    bob = make_person(people.org, "Bob Member")
    circle = make_circle(people.facilitator, members=[people.member, bob])
    session = make_session(circle, facilitator=people.facilitator)
    people.bob, people.circle, people.session = bob, circle, session
    return people


def do(room, user, type_, **fields):
    command = live.Command(type=type_, client_id=f"{type_}-{next(_ids)}", fields=fields)
    return live.perform(session_id=room.session.pk, user_id=user.pk, command=command)


def kinds(session):
    return list(SessionEvent.objects.filter(session=session).values_list("kind", flat=True))


def test_two_tabs_of_one_person_count_once(room):
    sid, alice = room.session.pk, room.member.pk
    live.connection_open(session_id=sid, user_id=alice, channel_name="tab-1")
    live.connection_open(session_id=sid, user_id=alice, channel_name="tab-2")
    live.connection_close(channel_name="tab-1")
    assert kinds(room.session) == ["presence.joined"]
    assert live.snapshot(session_id=sid, user_id=alice)["present"] == [alice]
    live.connection_close(channel_name="tab-2")
    assert kinds(room.session) == ["presence.joined", "presence.left"]
    assert live.snapshot(session_id=sid, user_id=alice)["present"] == []


def test_closing_a_persons_first_tab_keeps_their_place_among_the_present(room):
    """Found by the replay state machine: the order of `present` (arrival order, the default
    speaking order) moved when someone closed their earliest of two tabs, with no event, so a
    client's replayed state no longer equalled a fresh snapshot."""
    sid, alice, bob, t0 = room.session.pk, room.member.pk, room.bob.pk, timezone.now()
    live.connection_open(session_id=sid, user_id=alice, channel_name="alice-1", now=t0)
    live.connection_open(session_id=sid, user_id=bob, channel_name="bob", now=t0 + timedelta(seconds=1))
    live.connection_open(session_id=sid, user_id=alice, channel_name="alice-2", now=t0 + timedelta(seconds=2))
    live.connection_close(channel_name="alice-1", now=t0 + timedelta(seconds=3))
    # The same tab registered again (a heartbeat after a sweep) does not move her either.
    live.connection_open(session_id=sid, user_id=alice, channel_name="alice-2", now=t0 + timedelta(seconds=4))
    last = SessionEvent.objects.filter(session=room.session).order_by("seq").last()
    assert last.patch["present"] == [alice, bob]
    assert live.snapshot(session_id=sid, user_id=alice)["present"] == [alice, bob]


def test_a_brief_drop_does_not_split_attendance(room):
    sid, alice, t0 = room.session.pk, room.member.pk, timezone.now()
    live.connection_open(session_id=sid, user_id=alice, channel_name="a", now=t0)
    live.connection_close(channel_name="a", now=t0 + timedelta(minutes=10))
    live.connection_open(session_id=sid, user_id=alice, channel_name="b", now=t0 + timedelta(minutes=11))
    live.connection_close(channel_name="b", now=t0 + timedelta(minutes=40))
    stretches = list(Attendance.objects.values_list("joined_at", "left_at"))
    assert stretches == [(t0, t0 + timedelta(minutes=40))]


def test_a_long_absence_starts_a_new_attendance_stretch(room):
    sid, alice, t0 = room.session.pk, room.member.pk, timezone.now()
    live.connection_open(session_id=sid, user_id=alice, channel_name="a", now=t0)
    live.connection_close(channel_name="a", now=t0 + timedelta(minutes=5))
    live.connection_open(session_id=sid, user_id=alice, channel_name="b", now=t0 + timedelta(minutes=9))
    stretches = list(Attendance.objects.order_by("joined_at").values_list("joined_at", "left_at"))
    assert stretches == [(t0, t0 + timedelta(minutes=5)), (t0 + timedelta(minutes=9), None)]


def test_connections_left_by_a_dead_server_are_swept(room):
    sid, alice, t0 = room.session.pk, room.member.pk, timezone.now()
    live.connection_open(session_id=sid, user_id=alice, channel_name="dead", now=t0)
    live.connection_open(session_id=sid, user_id=room.bob.pk, channel_name="alive", now=t0)
    live.heartbeat(session_id=sid, user_id=room.bob.pk, channel_name="alive", now=t0 + timedelta(seconds=80))
    swept = live.connections_sweep(now=t0 + timedelta(seconds=100))
    again = live.connections_sweep(now=t0 + timedelta(seconds=100))
    assert (swept, again) == (1, 0)
    assert list(RoomConnection.objects.values_list("channel_name", flat=True)) == ["alive"]
    assert Attendance.objects.get(user=room.member).left_at == t0 + timedelta(seconds=100)


def test_heartbeat_after_a_sweep_brings_the_tab_back(room):
    sid, alice = room.session.pk, room.member.pk
    live.heartbeat(session_id=sid, user_id=alice, channel_name="returning")
    assert live.snapshot(session_id=sid, user_id=alice)["present"] == [alice]


def test_overdue_live_sessions_end_automatically_once(room):
    session = room.session
    live.connection_open(session_id=session.pk, user_id=room.member.pk, channel_name="a")
    do(room, room.facilitator, "session.start")
    do(room, room.member, "message.post", text="private words")
    not_yet = live.sessions_end_overdue(now=session.ends_at + live.GRACE_AFTER_END - timedelta(minutes=1))
    ended = live.sessions_end_overdue(now=session.ends_at + live.GRACE_AFTER_END + timedelta(minutes=1))
    again = live.sessions_end_overdue(now=session.ends_at + live.GRACE_AFTER_END + timedelta(minutes=2))
    session.refresh_from_db()
    assert (not_yet, ended, again) == ([], [session.pk], [])
    assert session.status == CircleSession.Status.ENDED
    assert kinds(session)[-1] == "session.ended"
    assert SessionEvent.objects.get(kind="message.posted").text == ""
    assert Attendance.objects.get().left_at is not None


def test_scheduled_sessions_nobody_started_are_left_alone(room):
    ended = live.sessions_end_overdue(now=room.session.ends_at + timedelta(hours=2))
    room.session.refresh_from_db()
    assert ended == []
    assert room.session.status == CircleSession.Status.SCHEDULED


def test_chat_is_kept_for_the_retention_days_then_blanked(room):
    room.org.chat_retention_days = 3
    room.org.save()
    t0 = timezone.now()
    do(room, room.facilitator, "session.start")
    do(room, room.member, "message.post", text="kept a while")
    live.perform(
        session_id=room.session.pk,
        user_id=room.facilitator.pk,
        command=live.Command(type="session.end", client_id="end"),
        now=t0,
    )
    assert SessionEvent.objects.get(kind="message.posted").text == "kept a while"
    assert live.chat_purge_expired(now=t0 + timedelta(days=2)) == []
    assert live.chat_purge_expired(now=t0 + timedelta(days=3, minutes=1)) == [room.session.pk]
    assert live.chat_purge_expired(now=t0 + timedelta(days=4)) == []
    assert SessionEvent.objects.get(kind="message.posted").text == ""
    snap = live.snapshot(session_id=room.session.pk, user_id=room.member.pk)
    assert snap["messages"] == []
    assert kinds(room.session)[-1] == "chat.purged"


def test_attendance_stops_when_the_session_ends_and_is_not_reopened(room):
    sid = room.session.pk
    live.connection_open(session_id=sid, user_id=room.member.pk, channel_name="a")
    do(room, room.facilitator, "session.start")
    do(room, room.facilitator, "session.end")
    live.connection_open(session_id=sid, user_id=room.bob.pk, channel_name="b")
    assert Attendance.objects.filter(user=room.bob).count() == 0
    assert Attendance.objects.filter(left_at__isnull=True).count() == 0


def test_room_entry_is_open_from_ten_minutes_before_until_the_grace_after(room):
    session, alice = room.session, room.member.pk
    opens, closes = session.starts_at - timedelta(minutes=10), session.ends_at + live.GRACE_AFTER_END
    codes = [
        live.room_entry(user_id=alice, session_id=session.pk, now=when).close_code
        for when in (opens - timedelta(seconds=1), opens, closes, closes + timedelta(seconds=1))
    ]
    assert codes == [live.CLOSE_NOT_OPEN, None, None, live.CLOSE_NOT_OPEN]


def test_deactivated_person_cannot_enter(room):
    room.member.is_active = False
    room.member.save()
    entry = live.room_entry(user_id=room.member.pk, session_id=room.session.pk)
    assert entry.close_code == live.CLOSE_NOT_FOUND


def test_facilitation_can_only_go_to_someone_in_the_circle(room):
    with pytest.raises(live.LiveError) as error:
        do(room, room.facilitator, "facilitation.hand", to=room.manager.pk)
    assert error.value.code == "invalid"
    Membership.objects.filter(user=room.bob).update(left_at=timezone.now())
    with pytest.raises(live.LiveError):
        do(room, room.facilitator, "facilitation.hand", to=room.bob.pk)


def test_token_bucket_allows_a_burst_then_refills_at_its_rate():
    clock = [0.0]
    bucket = live.TokenBucket(rate=2, burst=3, clock=lambda: clock[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock[0] = 0.5
    assert [bucket.take(), bucket.take()] == [True, False]


@pytest.mark.django_db(transaction=True)
def test_seq_stays_gap_free_when_many_commands_race(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from tests.factories import make_org

    org = make_org()
    fran = make_person(org, "Fran")
    people = [make_person(org) for _ in range(4)]
    circle = make_circle(fran, members=people)
    session = make_session(circle, facilitator=fran)
    errors = []

    def post_messages(person):
        try:
            for n in range(10):
                command = live.Command(type="message.post", client_id=f"m{n}", fields={"text": f"hello {n}"})
                live.perform(session_id=session.pk, user_id=person.pk, command=command)
        except Exception as error:  # noqa: BLE001  (reported by the assertion below)
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=post_messages, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seqs = list(SessionEvent.objects.filter(session=session).values_list("seq", flat=True))
    assert errors == []
    assert seqs == list(range(1, 41))


def test_removing_a_member_closes_their_room_sockets_after_commit(
    room, monkeypatch, django_capture_on_commit_callbacks
):
    from circles import services

    closed = []
    monkeypatch.setattr(live, "_force_close", lambda user_id, circle_id: closed.append((user_id, circle_id)))
    membership = Membership.objects.get(user=room.member, circle=room.circle)
    with django_capture_on_commit_callbacks(execute=True):
        services.membership_end(actor=room.facilitator, membership=membership)
    assert closed == [(room.member.pk, room.circle.pk)]


def test_deactivating_a_person_closes_all_their_room_sockets(
    room, monkeypatch, django_capture_on_commit_callbacks
):
    from accounts import services

    closed = []
    monkeypatch.setattr(live, "_force_close", lambda user_id, circle_id: closed.append((user_id, circle_id)))
    with django_capture_on_commit_callbacks(execute=True):
        services.person_deactivate(actor=room.admin, person=room.member)
    assert closed == [(room.member.pk, None)]


def test_sweep_task_ends_overdue_sessions(room):
    from circles import tasks

    do(room, room.facilitator, "session.start")
    CircleSession.objects.filter(pk=room.session.pk).update(
        starts_at=timezone.now() - timedelta(hours=3), ends_at=timezone.now() - timedelta(hours=2)
    )
    assert tasks.live_rooms_sweep() == {"connections": 0, "ended": 1}
    assert tasks.live_rooms_sweep() == {"connections": 0, "ended": 0}
