"""Reminders: an outbox planned with every change, sent once by the sweeper, at the right local time."""

import email
import smtplib
from datetime import UTC, date, datetime, time, timedelta
from email import policy
from zoneinfo import ZoneInfo

import icalendar
import pytest
import time_machine
from django.core import signing
from django.db import transaction
from django.urls import reverse

from circles import reminders, services
from circles.models import CircleSession, Membership, Notification, Reminder
from reflections.models import Thread
from tests.circles import reminder_rig as rig
from tests.factories import make_circle, make_person

Kind, Channel = Reminder.Kind, Reminder.Channel
LONDON = ZoneInfo("Europe/London")
# Monday 10 March 2025, 09:00 UTC. The circle meets on Tuesdays at 19:00 London time.
NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def circle(people):
    circle = make_circle(
        people.facilitator,
        members=[people.member],
        start_date=date(2025, 3, 11),
        start_time=time(19, 0),
        video_url="https://video.example.org/tuesday",
    )
    with time_machine.travel(NOW, tick=False):
        services.circle_materialise(circle_id=circle.pk, now=NOW)
    return circle


def first_session(circle) -> CircleSession:
    return circle.sessions.order_by("starts_at").first()


def rows_for(user, session):
    return {(r.kind, r.channel): r for r in Reminder.objects.filter(user=user, session=session)}


def sweep(at: datetime) -> reminders.SweepResult:
    with time_machine.travel(at, tick=False):
        return reminders.reminders_send_due()


def test_planning_sessions_writes_one_row_per_kind_and_channel_for_every_member(circle, people):
    session = first_session(circle)
    rows = rows_for(people.member, session)
    assert set(rows) == {(k, c) for k in (Kind.DAY_BEFORE, Kind.HOUR_BEFORE) for c in Channel.values}
    assert rows[(Kind.DAY_BEFORE, Channel.EMAIL)].due_at == datetime(2025, 3, 10, 19, tzinfo=UTC)
    assert rows[(Kind.HOUR_BEFORE, Channel.IN_APP)].due_at == datetime(2025, 3, 11, 18, tzinfo=UTC)
    assert rows_for(people.facilitator, session)
    assert Reminder.objects.filter(session=session).count() == 8


def test_replanning_twice_changes_nothing(circle, people):
    before = list(Reminder.objects.order_by("pk").values_list("pk", "due_at", "status", "generation"))
    result = reminders.reminders_replan_circle(circle=circle, now=NOW)
    assert result == reminders.PlanResult(created=0, moved=0, withdrawn=0)
    assert list(Reminder.objects.order_by("pk").values_list("pk", "due_at", "status", "generation")) == before


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_leaves_no_reminder_and_sends_nothing(people, mailoutbox):
    circle = make_circle(people.facilitator, members=[people.member], start_date=date(2025, 3, 11))

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), transaction.atomic():
        services.circle_materialise(circle_id=circle.pk, now=NOW)
        assert Reminder.objects.exists()
        raise Abandon
    assert not Reminder.objects.exists()
    assert sweep(NOW + timedelta(days=30)).sent == 0
    assert mailoutbox == []
    assert not Notification.objects.exists()


def test_the_sweeper_sends_what_is_due_once_and_running_it_again_sends_nothing(circle, people, mailoutbox):
    at = datetime(2025, 3, 10, 19, 0, 30, tzinfo=UTC)  # the day-before reminders for 11 March are due
    first = sweep(at)
    assert first.sent == 4  # two people, email and in-app
    assert sorted(m.to[0] for m in mailoutbox) == sorted([people.member.email, people.facilitator.email])
    assert Notification.objects.filter(user=people.member).count() == 1
    assert sweep(at).sent == 0
    assert sweep(at + timedelta(minutes=5)).sent == 0
    assert len(mailoutbox) == 2
    assert Reminder.objects.filter(status=Reminder.Status.SENT).count() == 4


def test_the_email_has_both_parts_the_invitation_and_the_unsubscribe_headers(circle, people, mailoutbox):
    Thread.objects.create(circle=circle, author=people.member, title="A hard week", body="SECRET BODY")
    sweep(datetime(2025, 3, 10, 19, 1, tzinfo=UTC))
    message = next(m for m in mailoutbox if m.to == [people.member.email])
    parsed = email.message_from_bytes(message.message().as_bytes(), policy=policy.default)
    types = [part.get_content_type() for part in parsed.walk()]
    assert "text/plain" in types and "text/html" in types and "text/calendar" in types
    invite = next(part for part in parsed.walk() if part.get_content_type() == "text/calendar")
    assert invite.get_param("method") == "REQUEST"
    event = icalendar.Calendar.from_ical(invite.get_content()).walk("VEVENT")[0]
    assert event["uid"].startswith(f"session-{first_session(circle).pk}@")
    assert str(event["attendee"]) == f"mailto:{people.member.email}"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = parsed["List-Unsubscribe"].strip("<>")
    assert "/notifications/unsubscribe/" in unsubscribe
    assert parsed["Message-ID"] == reminders.message_id(
        rows_for(people.member, first_session(circle))[(Kind.DAY_BEFORE, Channel.EMAIL)]
    )
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    for body in (text, html):
        assert "Tuesday circle" in body and "Tuesday 11 March at 19:00 (Europe/London)" in body
        assert "https://video.example.org/tuesday" in body
        assert "SECRET BODY" not in body and "A hard week" not in body
    assert "SECRET BODY" not in message.message().as_string()


def parsed_email(message: reminders.ReminderEmail) -> email.message.EmailMessage:
    """The bytes an SMTP server is handed, as a mail client reads them."""
    return email.message_from_bytes(message.raw, policy=policy.default)


def test_people_sharing_a_batch_each_get_their_own_name_and_unsubscribe_link(circle, people, mailoutbox):
    # The parts are rendered once per session and kind, with each person's values put in after.
    sweep(datetime(2025, 3, 10, 19, 1, tzinfo=UTC))
    assert sorted(m.to[0] for m in mailoutbox) == sorted([people.member.email, people.facilitator.email])
    for person, other in ((people.member, people.facilitator), (people.facilitator, people.member)):
        message = next(m for m in mailoutbox if m.to == [person.email])
        assert b"\x00" not in message.raw
        parsed = parsed_email(message)
        link = parsed["List-Unsubscribe"].strip("<>")
        token = link.rstrip("/").rpartition("/")[2]
        assert reminders.unsubscribe_user_id(token) == person.pk
        text = parsed.get_body(("plain",)).get_content()
        html = parsed.get_body(("html",)).get_content()
        for body in (text, html):
            assert f"Hello {person.display_name}," in body and other.display_name not in body
            assert link in body
        invite = next(part for part in parsed.walk() if part.get_content_type() == "text/calendar")
        event = icalendar.Calendar.from_ical(invite.get_content()).walk("VEVENT")[0]
        assert str(event["attendee"]) == f"mailto:{person.email}"
        assert event["attendee"].params["cn"] == person.display_name


def test_names_are_escaped_in_html_only_and_non_ascii_survives_subject_body_and_invitation(
    circle, people, mailoutbox
):
    people.member.display_name = "Zoë <b>&</b>"
    people.member.save()
    circle.name = "Café & friends"
    circle.save()
    sweep(datetime(2025, 3, 10, 19, 1, tzinfo=UTC))
    parsed = parsed_email(next(m for m in mailoutbox if m.to == [people.member.email]))
    assert parsed["Subject"] == "Café & friends meets tomorrow"
    html = parsed.get_body(("html",)).get_content()
    assert "Hello Zoë &lt;b&gt;&amp;&lt;/b&gt;," in html and "<b>&</b>" not in html
    assert "<strong>Café &amp; friends</strong>" in html
    # Plain text is not HTML: the same name and circle as typed, no entities.
    text = parsed.get_body(("plain",)).get_content()
    assert "Hello Zoë <b>&</b>," in text and "Café & friends meets tomorrow" in text and "&amp;" not in text
    invite = next(part for part in parsed.walk() if part.get_content_type() == "text/calendar")
    event = icalendar.Calendar.from_ical(invite.get_content()).walk("VEVENT")[0]
    assert event["attendee"].params["cn"] == "Zoë <b>&</b>" and str(event["summary"]) == "Café & friends"


def test_times_are_shown_in_the_members_own_zone(circle, people, mailoutbox):
    people.member.time_zone = "America/New_York"
    people.member.save()
    sweep(datetime(2025, 3, 10, 19, 1, tzinfo=UTC))
    message = next(m for m in mailoutbox if m.to == [people.member.email])
    assert "Tuesday 11 March at 15:00 (America/New_York)" in message.body


def test_a_day_before_reminder_keeps_local_time_across_the_clock_change_and_fires_once(people, mailoutbox):
    # Sunday 30 March 2025: the clocks go forward at 01:00 in London. The circle meets Sundays 19:00.
    circle = make_circle(people.facilitator, members=[people.member], start_date=date(2025, 3, 23))
    circle.start_time = time(19, 0)
    circle.save()
    start = datetime(2025, 3, 24, 9, tzinfo=UTC)
    services.circle_materialise(circle_id=circle.pk, now=start)
    session = circle.sessions.get(occurrence_date=date(2025, 3, 30))
    assert session.starts_at == datetime(2025, 3, 30, 18, tzinfo=UTC)  # 19:00 BST
    row = Reminder.objects.get(
        user=people.member, session=session, kind=Kind.DAY_BEFORE, channel=Channel.EMAIL
    )
    # 19:00 on Saturday, still GMT: 23 hours before by the clock, the same time of day locally.
    assert row.due_at == datetime(2025, 3, 29, 19, tzinfo=UTC)
    assert row.due_at.astimezone(LONDON).time() == time(19, 0)
    hour = Reminder.objects.get(
        user=people.member, session=session, kind=Kind.HOUR_BEFORE, channel=Channel.EMAIL
    )
    assert hour.due_at.astimezone(LONDON).time() == time(18, 0)

    def sent_for_session():
        return [m for m in mailoutbox if m.to == [people.member.email] and "30 March" in m.body]

    t = datetime(2025, 3, 29, 17, tzinfo=UTC)
    while t < datetime(2025, 3, 30, 19, tzinfo=UTC):
        sweep(t)
        if t < datetime(2025, 3, 29, 19, tzinfo=UTC):
            assert sent_for_session() == []
        t += timedelta(minutes=30)
    subjects = sorted(m.subject for m in sent_for_session())
    assert subjects == ["Tuesday circle meets in an hour", "Tuesday circle meets tomorrow"]


def test_quiet_hours_bring_a_reminder_earlier_and_never_inside_them(people):
    member = people.member
    member.quiet_hours_start, member.quiet_hours_end = time(22, 0), time(8, 0)
    member.save()
    circle = make_circle(people.facilitator, members=[member], start_date=date(2025, 3, 11))
    circle.start_time = time(8, 30)  # 1 h before is 07:30, inside the quiet hours
    circle.save()
    services.circle_materialise(circle_id=circle.pk, now=NOW)
    for row in Reminder.objects.filter(user=member):
        assert reminders.quiet_window(member, row.due_at) is None
        assert row.due_at < row.session.starts_at
    session = circle.sessions.get(occurrence_date=date(2025, 3, 11))
    hour = rows_for(member, session)[(Kind.HOUR_BEFORE, Channel.EMAIL)]
    assert hour.due_at == datetime(
        2025, 3, 10, 21, 45, tzinfo=UTC
    )  # 15 minutes before 22:00 the night before


def test_quiet_hours_are_read_in_the_members_own_zone(people):
    member = people.member
    member.time_zone = "Asia/Tokyo"
    member.quiet_hours_start, member.quiet_hours_end = time(0, 0), time(7, 0)
    member.save()
    # 18:00 UTC on 10 March is 03:00 on 11 March in Tokyo: quiet.
    assert reminders.quiet_window(member, datetime(2025, 3, 10, 18, tzinfo=UTC)) is not None
    assert reminders.quiet_window(member, datetime(2025, 3, 10, 23, tzinfo=UTC)) is None


def test_nothing_is_planned_for_away_dates_and_removing_them_brings_reminders_back(circle, people):
    session = first_session(circle)
    away = services.away_add(
        user=people.member, starts_on=date(2025, 3, 11), ends_on=date(2025, 3, 11), now=NOW
    )
    rows = rows_for(people.member, session)
    assert {r.status for r in rows.values()} == {Reminder.Status.WITHDRAWN}
    later = circle.sessions.get(occurrence_date=date(2025, 3, 18))
    assert {r.status for r in rows_for(people.member, later).values()} == {Reminder.Status.PENDING}
    with time_machine.travel(NOW, tick=False):
        services.away_remove(user=people.member, away=away)
    assert {r.status for r in rows_for(people.member, session).values()} == {Reminder.Status.PENDING}


def test_a_cancelled_or_skipped_session_sends_nothing(circle, people, mailoutbox):
    sessions = list(circle.sessions.order_by("starts_at")[:2])
    services.session_change(
        actor=people.facilitator, session=sessions[0], action="cancel", reason="Holiday", now=NOW
    )
    services.session_change(
        actor=people.facilitator, session=sessions[1], action="skip", reason="Training", now=NOW
    )
    for session in sessions:
        assert not Reminder.objects.filter(session=session, status=Reminder.Status.PENDING).exists()
    sweep(datetime(2025, 3, 19, tzinfo=UTC))
    assert not any("11 March" in m.body or "18 March" in m.body for m in mailoutbox)


def test_a_moved_session_moves_its_reminders_and_resends_one_that_told_the_old_time(
    circle, people, mailoutbox
):
    session = first_session(circle)
    sweep(datetime(2025, 3, 10, 19, 1, tzinfo=UTC))  # the day-before reminder went out
    assert len(mailoutbox) == 2
    with time_machine.travel(datetime(2025, 3, 10, 20, tzinfo=UTC), tick=False):
        services.session_change(
            actor=people.facilitator,
            session=session,
            action="move",
            reason="Room clash",
            new_date=date(2025, 3, 13),
            new_time=time(12, 0),
        )
    rows = rows_for(people.member, session)
    hour = rows[(Kind.HOUR_BEFORE, Channel.EMAIL)]
    assert hour.status == Reminder.Status.PENDING and hour.generation == 0
    assert hour.due_at == datetime(2025, 3, 13, 11, tzinfo=UTC)
    day = rows[(Kind.DAY_BEFORE, Channel.EMAIL)]
    assert (day.status, day.generation) == (Reminder.Status.PENDING, 1)
    assert day.due_at == datetime(2025, 3, 12, 12, tzinfo=UTC)
    sweep(datetime(2025, 3, 11, 18, 30, tzinfo=UTC))  # the old hour-before time: nothing
    assert len(mailoutbox) == 2
    sweep(datetime(2025, 3, 12, 12, 1, tzinfo=UTC))
    moved = [m for m in mailoutbox[2:] if m.to == [people.member.email]]
    assert len(moved) == 1 and "Thursday 13 March at 12:00" in moved[0].body
    assert moved[0].extra_headers["Message-ID"] != mailoutbox[0].extra_headers["Message-ID"]


def test_leaving_a_circle_withdraws_pending_reminders(circle, people):
    membership = Membership.objects.get(circle=circle, user=people.member)
    services.membership_end(actor=people.member, membership=membership, now=NOW)
    assert not Reminder.objects.filter(user=people.member, status=Reminder.Status.PENDING).exists()


def test_a_new_member_is_reminded_of_coming_sessions(circle, people):
    newcomer = make_person(people.org, "Nia Newcomer")
    with time_machine.travel(NOW, tick=False):
        services.membership_add(actor=people.facilitator, circle=circle, person=newcomer)
    assert Reminder.objects.filter(user=newcomer, status=Reminder.Status.PENDING).count() == 12 * 4


def test_preferences_decide_kinds_and_channels(circle, people):
    member = people.member
    member.notify_by_email = False
    member.remind_day_before = False
    member.save()
    reminders.reminders_replan_user(user=member, now=NOW)
    pending = Reminder.objects.filter(user=member, status=Reminder.Status.PENDING)
    assert set(pending.values_list("kind", "channel")) == {(Kind.HOUR_BEFORE, Channel.IN_APP)}
    assert Reminder.objects.filter(user=people.facilitator, status=Reminder.Status.PENDING).count() == 48


def test_the_facilitator_of_the_day_hears_of_their_turn_and_is_reminded_the_day_before(people, mailoutbox):
    circle = make_circle(people.facilitator, members=[people.member], start_date=date(2025, 3, 11))
    Membership.objects.filter(circle=circle, user=people.member).update(rota_opt_in=True)
    services.circle_materialise(circle_id=circle.pk, now=NOW)
    turns = circle.sessions.filter(facilitator=people.member).order_by("starts_at")
    turn = turns.first()
    assert turn is not None
    rows = rows_for(people.member, turn)
    assigned = rows[(Kind.TURN_ASSIGNED, Channel.EMAIL)]
    assert assigned.due_at == max(NOW, turn.starts_at - reminders.TURN_NOTICE)
    assert rows[(Kind.TURN_TOMORROW, Channel.IN_APP)].due_at == rows[(Kind.DAY_BEFORE, Channel.IN_APP)].due_at
    sweep(assigned.due_at)
    assert any(m.subject.startswith("You are facilitating") for m in mailoutbox)
    assert Notification.objects.filter(user=people.member, kind=Notification.Kind.TURN).exists()


def test_unsubscribe_tokens_are_signed_and_tamper_proof(people):
    token = reminders.unsubscribe_token(people.member)
    assert reminders.unsubscribe_user_id(token) == people.member.pk
    assert reminders.unsubscribe_user_id(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]) is None
    forged = signing.dumps({"u": people.admin.pk}, salt="something else", compress=True)
    assert reminders.unsubscribe_user_id(forged) is None
    assert reminders.unsubscribe_user_id("not-a-token") is None


@time_machine.travel(NOW, tick=False)
def test_one_click_unsubscribe_asks_on_get_and_switches_emails_off_on_post(circle, people, client):
    url = reverse("notifications:unsubscribe", args=[reminders.unsubscribe_token(people.member)])
    page = client.get(url)
    assert page.status_code == 200 and b"Stop reminder emails?" in page.content
    people.member.refresh_from_db()
    assert people.member.notify_by_email
    # A mail client's RFC 8058 POST: no cookie, no CSRF token.
    done = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    people.member.refresh_from_db()
    assert not people.member.notify_by_email
    pending = Reminder.objects.filter(user=people.member, status=Reminder.Status.PENDING)
    assert set(pending.values_list("channel", flat=True)) == {Channel.IN_APP}
    assert client.post(url).status_code == 200  # twice is fine


def test_a_tampered_unsubscribe_link_changes_nothing(people, client):
    token = reminders.unsubscribe_token(people.member)
    response = client.post(reverse("notifications:unsubscribe", args=[token + "x"]))
    assert response.status_code == 400
    people.member.refresh_from_db()
    assert people.member.notify_by_email


def test_unsubscribe_refuses_other_methods(people, client):
    url = reverse("notifications:unsubscribe", args=[reminders.unsubscribe_token(people.member)])
    assert client.put(url).status_code == 405


def test_an_email_switched_off_while_claimed_is_withdrawn_not_sent(circle, people, mailoutbox):
    people.member.notify_by_email = False
    people.member.save()  # no replan: the sweeper's last look must catch it
    sweep(datetime(2025, 3, 10, 19, 1, tzinfo=UTC))
    assert [m.to for m in mailoutbox] == [[people.facilitator.email]]
    row = Reminder.objects.get(
        user=people.member, kind=Kind.DAY_BEFORE, channel=Channel.EMAIL, session=first_session(circle)
    )
    assert row.status == Reminder.Status.WITHDRAWN


def test_a_failed_send_is_retried_later_and_not_marked_sent(circle, people, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens on the discard port
    with pytest.raises(OSError):
        sweep(datetime(2025, 3, 10, 19, 1, tzinfo=UTC))
    due = Reminder.objects.filter(session=first_session(circle), kind=Kind.DAY_BEFORE)
    # In-app notices do not wait for the mail server; the emails stay pending, their claims released.
    assert {r.status for r in due.filter(channel=Channel.IN_APP)} == {Reminder.Status.SENT}
    emails = due.filter(channel=Channel.EMAIL)
    assert {(r.status, r.claimed_by) for r in emails} == {(Reminder.Status.PENDING, "")}


@pytest.fixture
def smtp_sink(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    with rig.smtp_sink() as (sink, port):
        settings.EMAIL_HOST, settings.EMAIL_PORT = rig.HOST, port
        yield sink


def test_a_message_refused_after_the_commit_goes_back_to_pending_and_is_sent_later(circle, smtp_sink):
    smtp_sink.refusing = True
    assert sweep(datetime(2025, 3, 10, 19, 1, tzinfo=UTC)).failed == 2  # member and facilitator, by email
    session = first_session(circle)
    refused = Reminder.objects.filter(session=session, channel=Channel.EMAIL, kind=Kind.DAY_BEFORE)
    assert {(r.status, r.sent_at, r.attempts) for r in refused} == {(Reminder.Status.PENDING, None, 1)}
    assert all("554" in r.last_error for r in refused) and smtp_sink.total == 0
    smtp_sink.refusing = False
    sweep(datetime(2025, 3, 10, 19, 7, tzinfo=UTC))  # the retry is due five minutes on
    assert smtp_sink.total == 2 and set(smtp_sink.counts.values()) == {1}
    assert {r.status for r in refused.all()} == {Reminder.Status.SENT}


def test_a_recipient_refused_in_a_group_is_retried_alone_and_the_rest_of_the_group_is_sent(
    circle, people, smtp_sink
):
    # The member's and the facilitator's emails go out together, each on its own SMTP session.
    smtp_sink.refused_recipients = {people.member.email}
    result = sweep(datetime(2025, 3, 10, 19, 1, tzinfo=UTC))
    assert (result.sent, result.failed) == (3, 1)  # the facilitator's email and both in-app notices
    facilitator, member = (
        rows_for(person, first_session(circle))[(Kind.DAY_BEFORE, Channel.EMAIL)]
        for person in (people.facilitator, people.member)
    )
    assert set(smtp_sink.counts) == {reminders.message_id(facilitator)}
    assert facilitator.status == Reminder.Status.SENT
    assert (member.status, member.attempts, member.claimed_by) == (Reminder.Status.PENDING, 1, "")
    assert "550" in member.last_error
    smtp_sink.refused_recipients = set()
    assert sweep(datetime(2025, 3, 10, 19, 7, tzinfo=UTC)).sent == 1
    assert smtp_sink.counts == {reminders.message_id(facilitator): 1, reminders.message_id(member): 1}


def test_a_sender_dying_before_the_last_dot_leaves_nothing_at_the_server(circle, people, smtp_sink, settings):
    # What the sweeper's ordering rests on: SMTP keeps nothing from a connection closed inside DATA.
    row = rows_for(people.member, first_session(circle))[(Kind.DAY_BEFORE, Channel.EMAIL)]
    message = reminders.reminder_email(row)
    outbox = reminders._Outbox()
    assert outbox.open_envelope(row.pk, message) is None
    outbox.send_message(message)
    outbox.close()  # drops the socket: a QUIT would be read as part of the message
    with smtplib.SMTP(settings.EMAIL_HOST, settings.EMAIL_PORT) as later:
        later.noop()  # the server has handled the dropped session before it answers a new one
    assert smtp_sink.total == 0


def test_the_sink_answers_pipelined_commands_in_order(smtp_sink, settings):
    smtp_sink.refused_recipients = {"nobody@example.org"}
    with smtplib.SMTP(settings.EMAIL_HOST, settings.EMAIL_PORT) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("pipelining")
        smtp.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        assert [smtp.getreply()[0] for _ in range(3)] == [250, 250, 354]
        # The end of one message, then the next envelope, in one write.
        smtp.send(b"Message-ID: <one@x>\r\n\r\nHi\r\n.\r\nMAIL FROM:<a@example.org>\r\n")
        smtp.send(b"RCPT TO:<nobody@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n")
        assert [smtp.getreply()[0] for _ in range(5)] == [250, 250, 550, 250, 354]
        smtp.send(b"Message-ID: <two@x>\r\n\r\nHi\r\n.\r\n")
        assert smtp.getreply()[0] == 250
    assert smtp_sink.counts == {"<one@x>": 1, "<two@x>": 1}


MANY = 12


@pytest.fixture
def many_due(db):
    """MANY due reminder emails, one per person, in the order the sweeper sends them."""
    return rig.make_due_reminders(people=MANY, kinds=[Kind.HOUR_BEFORE], channels=[Channel.EMAIL], due_at=NOW)


@pytest.fixture
def smtp_writes(monkeypatch):
    """Every write the sweeper makes on its SMTP connection."""
    writes: list[bytes] = []
    write = reminders._Outbox.write

    def recording(outbox, data):
        writes.append(data)
        write(outbox, data)

    monkeypatch.setattr(reminders._Outbox, "write", recording)
    return writes


def sent_once(rows) -> dict[str, int]:
    return {reminders.message_id(row): 1 for row in rows}


def test_emails_go_out_once_each_over_one_pipelined_connection(many_due, smtp_sink, smtp_writes):
    assert sweep(NOW) == reminders.SweepResult(sent=MANY, failed=0)
    assert smtp_sink.counts == sent_once(many_due) and smtp_sink.connections == 1
    assert not Reminder.objects.exclude(status=Reminder.Status.SENT).exists()
    # Each dot but the last carries the next email's envelope; one envelope went out on its own.
    piggybacked = [w for w in smtp_writes if w.startswith(b".\r\nMAIL FROM:")]
    assert len(piggybacked) == MANY - 1
    assert sum(w.startswith(b"MAIL FROM:") for w in smtp_writes) == 1


def test_a_server_without_pipelining_gets_one_command_at_a_time_on_one_connection(
    many_due, smtp_sink, smtp_writes
):
    smtp_sink.pipelining = False
    assert sweep(NOW) == reminders.SweepResult(sent=MANY, failed=0)
    assert smtp_sink.counts == sent_once(many_due) and smtp_sink.connections == 1
    assert smtp_writes.count(b".\r\n") == MANY
    commands = [w for w in smtp_writes if b"Message-ID:" not in w]
    assert len(commands) == 4 * MANY and all(w.count(b"\r\n") == 1 for w in commands)


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "plain"])
@pytest.mark.parametrize("refused", ["mail", "rcpt"])
def test_a_refused_envelope_fails_only_its_row_which_is_sent_once_later(
    many_due, smtp_sink, refused, pipelining
):
    smtp_sink.pipelining = pipelining
    unlucky = many_due[4]
    if refused == "mail":
        smtp_sink.refused_mails = {5}  # the fifth email's MAIL
    else:
        smtp_sink.refused_recipients = {unlucky.user.email}
    assert sweep(NOW) == reminders.SweepResult(sent=MANY - 1, failed=1)
    others = [row for row in many_due if row.pk != unlucky.pk]
    assert smtp_sink.counts == sent_once(others) and smtp_sink.connections == 1
    unlucky.refresh_from_db()
    assert (unlucky.status, unlucky.attempts, unlucky.claimed_by) == (Reminder.Status.PENDING, 1, "")
    assert ("451" if refused == "mail" else "550") in unlucky.last_error
    smtp_sink.refused_recipients = set()
    assert sweep(NOW + timedelta(minutes=6)) == reminders.SweepResult(sent=1, failed=0)
    assert smtp_sink.counts == sent_once(many_due)


@pytest.mark.parametrize("hang_up", [1, 6], ids=["first-mail", "mid-batch"])
def test_a_connection_the_server_drops_is_reopened_and_nothing_is_lost_or_doubled(
    many_due, smtp_sink, hang_up
):
    smtp_sink.hang_ups = {hang_up}
    result = sweep(NOW)
    if hang_up == 1:
        # The first email's own envelope: that row is retried later, the rest go on a new connection.
        assert result == reminders.SweepResult(sent=MANY - 1, failed=1)
        assert sweep(NOW + timedelta(minutes=6)).sent == 1
    else:
        # Another email's envelope, sent with the dot before it: it is sent again on a new one.
        assert result == reminders.SweepResult(sent=MANY, failed=0)
    assert smtp_sink.counts == sent_once(many_due)
    assert not Reminder.objects.exclude(status=Reminder.Status.SENT).exists()


def test_a_row_taken_away_after_its_envelope_went_out_is_not_sent(many_due, smtp_sink, monkeypatch):
    taken = many_due[3]
    mark_sent = reminders._mark_sent

    def replanned_meanwhile(row, **kwargs):
        if row.pk == taken.pk:  # its envelope went out with the dot before; now a replan withdraws it
            Reminder.objects.filter(pk=row.pk).update(status=Reminder.Status.WITHDRAWN)
        return mark_sent(row, **kwargs)

    monkeypatch.setattr(reminders, "_mark_sent", replanned_meanwhile)
    assert sweep(NOW) == reminders.SweepResult(sent=MANY - 1, failed=0)
    # The open DATA was given up by dropping the connection; the rest went on a new one.
    assert smtp_sink.counts == sent_once(r for r in many_due if r.pk != taken.pk)
    assert smtp_sink.connections == 2
    taken.refresh_from_db()
    assert taken.status == Reminder.Status.WITHDRAWN
