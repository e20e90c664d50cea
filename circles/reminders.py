"""Session reminders: an outbox planned with every change, and a sweeper that sends what is due.

Planning. `reminders_replan_circle` and `reminders_replan_user` run inside the caller's transaction
(the service that planned, moved, cancelled or skipped a session, added or removed a member,
changed a preference or an away date), so the rows stand or fall with the change. The key of a
row is (person, session, kind, channel), kind in {24h, 1h, turn_assigned, turn_tomorrow} and
channel in {email, in_app}; `Reminder.key` adds the generation. Replanning compares what is wanted
now with the rows there are and only writes the difference, so running it twice changes nothing.

- 24h is "a day before": the same wall-clock time the day before, in the circle's zone, so across a
  clock change it still arrives at the session's local time. 1h is one hour before, by the clock.
- turn_assigned tells the facilitator of the day about their turn, TURN_NOTICE ahead (or at once
  if the turn is nearer); turn_tomorrow reminds them a day before, like 24h.
- Quiet hours, in the person's own zone: a reminder that would land inside them is brought
  EARLIER, to QUIET_MARGIN before they begin. Later could mean after the session has started; an
  earlier reminder is still useful. turn_assigned has no deadline, so it waits until they end.
- Nothing is wanted for a session that is not scheduled (cancelled, skipped), for a person away on
  the session's date (in the circle's zone, as the rota counts it), who left the circle, or whose
  preferences say no. A pending row no longer wanted is withdrawn, never deleted.
- A moved session moves its pending reminders. A reminder already sent about the old time is
  re-armed as a new generation (it told the person the wrong time), when its new time is still
  ahead. Rows whose time passed while planning are sent at once, unless the session is about to
  start and a nearer reminder covers it.

Sending. `reminders_send_due` claims due rows in batches: one short transaction picks them with
`SELECT ... FOR UPDATE SKIP LOCKED` on Postgres (a conditional UPDATE elsewhere) and stamps
claimed_at/claimed_by, a lease: a sweeper that dies leaves claims that expire after LEASE, and
then another sweeper takes the rows again. Two beats or two workers sweep disjoint rows. Emails of
a sweep go over one SMTP connection. Each row is then sent in its own transaction: a conditional
UPDATE marks it sent (only if it is still pending and still ours, which also locks it). In-app
rows create their Notification in that same transaction, so they are exactly once.

An email and its sent mark are made final together. SMTP keeps nothing until the dot that ends
DATA, and Postgres nothing until COMMIT reaches it, so inside the transaction we send the envelope
and the whole message but that dot; then the dot, then COMMIT at once, and only then read the
server's answer. A sweeper killed before the dot leaves nothing at either end (the server drops a
message whose connection closes mid-DATA; the row is pending and sent again after the lease). The
one window left is between writing the dot and writing COMMIT: a few Python statements, no round
trip. A death inside it sends the message again, with the same Message-ID, which receiving systems
use to fold duplicates. If the server refuses the message after the commit, the row goes back to
pending for a retry. Nothing is lost: a row marked sent is one whose message the server took.
"""

import logging
import os
import re
import smtplib
import socket
import time as monotonic_time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.mime.text import MIMEText
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import sanitize_address
from django.db import connection, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.services import audit
from circles import calendar
from circles.models import AwayPeriod, Circle, CircleSession, Membership, Notification, Reminder
from circles.notifications import notify

log = logging.getLogger(__name__)

Kind = Reminder.Kind
Channel = Reminder.Channel
Pending, Sent, Withdrawn = Reminder.Status.PENDING, Reminder.Status.SENT, Reminder.Status.WITHDRAWN

HOUR = timedelta(hours=1)
TURN_NOTICE = timedelta(days=14)
QUIET_MARGIN = timedelta(minutes=15)
# A late day-before reminder is dropped when the session is this close and the 1 h one is coming.
LATE_DAY_BEFORE_CUTOFF = timedelta(hours=2)
LEASE = timedelta(seconds=settings.REMINDER_LEASE_SECONDS)
BATCH = 100
SWEEP_BUDGET_SECONDS = 20
MAX_ATTEMPTS = 5
UNSUBSCRIBE_SALT = "alongside.reminders.unsubscribe"
MESSAGE_KINDS = {
    Kind.DAY_BEFORE: Notification.Kind.REMINDER,
    Kind.HOUR_BEFORE: Notification.Kind.REMINDER,
    Kind.TURN_ASSIGNED: Notification.Kind.TURN,
    Kind.TURN_TOMORROW: Notification.Kind.TURN,
}


# --- When a reminder is due ----------------------------------------------------------------------


def _day_before(starts_at: datetime, zone: ZoneInfo) -> datetime:
    local = starts_at.astimezone(zone)
    return (local.replace(tzinfo=None) - timedelta(days=1)).replace(tzinfo=zone, fold=0).astimezone(UTC)


def quiet_window(user: User, at: datetime) -> tuple[datetime, datetime] | None:
    """The person's quiet hours (as UTC instants) that contain `at`, if any."""
    start, end = user.quiet_hours_start, user.quiet_hours_end
    if start is None or end is None or start == end:
        return None
    zone = user.zone
    local_day = at.astimezone(zone).date()
    for day in (local_day - timedelta(days=1), local_day):
        begins = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
        end_day = day if end > start else day + timedelta(days=1)
        ends = datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)
        if begins <= at < ends:
            return begins, ends
    return None


def _outside_quiet_hours(user: User, at: datetime, *, earlier: bool) -> datetime:
    window = quiet_window(user, at)
    if window is None:
        return at
    return window[0] - QUIET_MARGIN if earlier else window[1]


def due_at_for(
    *, user: User, session: CircleSession, zone: ZoneInfo, kind: str, now: datetime, hour_wanted: bool
) -> datetime | None:
    """When this reminder should go out, or None when it is no longer worth sending."""
    starts_at = session.starts_at
    if kind == Kind.HOUR_BEFORE:
        due = starts_at - HOUR
    elif kind == Kind.TURN_ASSIGNED:
        due = max(starts_at - TURN_NOTICE, now)
    else:
        due = _day_before(starts_at, zone)
    due = _outside_quiet_hours(user, due, earlier=kind != Kind.TURN_ASSIGNED)
    if due >= now:
        return due
    # Planned late (a session added or moved at short notice): send now if it still helps.
    if kind == Kind.DAY_BEFORE and hour_wanted and starts_at - now <= LATE_DAY_BEFORE_CUTOFF:
        return None
    due = _outside_quiet_hours(user, now, earlier=False)
    return due if due < starts_at else None


# --- Planning ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanResult:
    created: int = 0
    moved: int = 0
    withdrawn: int = 0


def _kinds_for(user: User, session: CircleSession) -> list[str]:
    kinds = []
    if user.remind_day_before:
        kinds.append(Kind.DAY_BEFORE)
    if user.remind_hour_before:
        kinds.append(Kind.HOUR_BEFORE)
    if session.facilitator_id == user.pk:
        kinds += [Kind.TURN_ASSIGNED, Kind.TURN_TOMORROW]
    return kinds


def _channels_for(user: User) -> list[str]:
    channels = []
    if user.notify_by_email and user.email:
        channels.append(Channel.EMAIL)
    if user.notify_in_app:
        channels.append(Channel.IN_APP)
    return channels


def _replan(
    sessions: list[CircleSession],
    members: dict[int, list[User]],
    *,
    now: datetime,
    only_user: int | None = None,
) -> PlanResult:
    """Bring the rows for these sessions (with `circle` loaded) in line with what is wanted now.

    `members` maps a circle id to the people to consider in it; rows of anyone else for these
    sessions are withdrawn, unless `only_user` limits the work to one person's rows. Locks the
    existing rows, so a sweeper in the middle of sending one finishes first.
    """
    if not sessions:
        return PlanResult()
    people = {u.pk for users in members.values() for u in users}
    away = defaultdict(list)
    earliest = min(s.starts_at for s in sessions) - timedelta(days=1)
    for period in AwayPeriod.objects.filter(user_id__in=people, ends_on__gte=earliest.date()):
        away[period.user_id].append((period.starts_on, period.ends_on))

    wanted: dict[tuple, datetime] = {}
    for session in sessions:
        if session.status != CircleSession.Status.SCHEDULED or session.starts_at <= now:
            continue
        zone = ZoneInfo(session.circle.time_zone)
        day = session.starts_at.astimezone(zone).date()
        for user in members.get(session.circle_id, ()):
            if not user.is_active or any(a <= day <= b for a, b in away[user.pk]):
                continue
            kinds = _kinds_for(user, session)
            for channel in _channels_for(user):
                for kind in kinds:
                    due = due_at_for(
                        user=user,
                        session=session,
                        zone=zone,
                        kind=kind,
                        now=now,
                        hour_wanted=Kind.HOUR_BEFORE in kinds,
                    )
                    if due is not None:
                        wanted[(user.pk, session.pk, kind, channel)] = due

    by_id = {s.pk: s for s in sessions}
    rows = Reminder.objects.select_for_update().filter(session_id__in=by_id)
    if only_user is not None:
        rows = rows.filter(user_id=only_user)
    existing = {(r.user_id, r.session_id, r.kind, r.channel): r for r in rows}
    moved = withdrawn = 0
    changed = []
    for key, row in existing.items():
        session = by_id[row.session_id]
        due = wanted.pop(key, None)
        if due is None:
            if row.status == Pending:
                row.status = Withdrawn
                withdrawn += 1
                changed.append(row)
            continue
        if row.status == Sent:
            if row.session_starts_at == session.starts_at:
                continue
            # Sent about a time that has since changed: a new generation tells the new time.
            row.generation += 1
            row.sent_at = None
        elif row.status == Pending and row.due_at == due and row.session_starts_at == session.starts_at:
            continue
        elif row.status == Pending and row.due_at <= now and due <= now:
            continue
        row.status, row.due_at, row.session_starts_at = Pending, due, session.starts_at
        moved += 1
        changed.append(row)
    for row in changed:
        # Any change releases the claim, so a sweeper holding the old version cannot send it.
        row.claimed_at, row.claimed_by, row.attempts, row.updated_at = None, "", 0, now
    Reminder.objects.bulk_update(
        changed,
        [
            "status",
            "due_at",
            "session_starts_at",
            "generation",
            "sent_at",
            "claimed_at",
            "claimed_by",
            "attempts",
            "updated_at",
        ],
    )
    Reminder.objects.bulk_create(
        [
            Reminder(
                user_id=user_id,
                session_id=session_id,
                kind=kind,
                channel=channel,
                due_at=due,
                session_starts_at=by_id[session_id].starts_at,
                created_at=now,
                updated_at=now,
            )
            for (user_id, session_id, kind, channel), due in wanted.items()
        ],
        ignore_conflicts=True,
    )
    return PlanResult(created=len(wanted), moved=moved, withdrawn=withdrawn)


def _active_members(circle_ids) -> dict[int, list[User]]:
    members = defaultdict(list)
    for m in Membership.objects.filter(circle_id__in=circle_ids, left_at__isnull=True).select_related(
        "user__organisation"
    ):
        members[m.circle_id].append(m.user)
    return members


def reminders_replan_circle(*, circle: Circle, now: datetime | None = None) -> PlanResult:
    """Plan the reminders of every coming session of the circle. Runs in the caller's transaction.

    Safe to call twice: the second call finds nothing to change.
    """
    now = now or timezone.now()
    with transaction.atomic():
        sessions = list(circle.sessions.filter(starts_at__gt=now))
        for session in sessions:
            session.circle = circle
        return _replan(sessions, _active_members([circle.pk]), now=now)


def reminders_replan_user(*, user: User, now: datetime | None = None) -> PlanResult:
    """Plan one person's reminders in all their circles (after a preference or away-date change).

    Rows of the person's circle-mates are left alone.
    """
    now = now or timezone.now()
    with transaction.atomic():
        user = User.objects.select_related("organisation").get(pk=user.pk)
        circle_ids = list(
            Membership.objects.filter(user=user, left_at__isnull=True).values_list("circle_id", flat=True)
        )
        # Sessions of circles they left still hold their pending rows: include them to withdraw those.
        left_ids = set(
            Reminder.objects.filter(user=user, status=Pending, session__starts_at__gt=now).values_list(
                "session__circle_id", flat=True
            )
        )
        sessions = list(
            CircleSession.objects.filter(circle_id__in=set(circle_ids) | left_ids, starts_at__gt=now)
            .select_related("circle")
            .order_by("starts_at")
        )
        return _replan(sessions, {circle_id: [user] for circle_id in circle_ids}, only_user=user.pk, now=now)


def reminders_replan_all(*, now: datetime | None = None) -> PlanResult:
    """Re-plan every open circle, one transaction each: the safety net that makes the outbox converge."""
    now = now or timezone.now()
    created = moved = withdrawn = 0
    for circle in Circle.objects.filter(archived_at__isnull=True):
        with transaction.atomic():
            Circle.objects.select_for_update().filter(pk=circle.pk).first()
            result = reminders_replan_circle(circle=circle, now=now)
        created, moved, withdrawn = (
            created + result.created,
            moved + result.moved,
            withdrawn + result.withdrawn,
        )
    return PlanResult(created=created, moved=moved, withdrawn=withdrawn)


# --- Messages ------------------------------------------------------------------------------------


def unsubscribe_token(user: User) -> str:
    """A signed, tamper-proof token naming the person. It never expires: old emails keep working."""
    return signing.dumps({"u": user.pk}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_user_id(token: str) -> int | None:
    try:
        return int(signing.loads(token, salt=UNSUBSCRIBE_SALT)["u"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def reminder_emails_stop(*, token: str) -> User | None:
    """One-click unsubscribe: the signed token's person gets no more reminder emails. Safe to call twice.

    In-app reminders stay as they were; pending email rows are withdrawn at once.
    """
    user_id = unsubscribe_user_id(token)
    if user_id is None:
        return None
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            return None
        if user.notify_by_email:
            user.notify_by_email = False
            user.save(update_fields=["notify_by_email"])
            if user.organisation_id:
                audit(actor=user, action="reminders.email_unsubscribed", subject=user.display_name)
        reminders_replan_user(user=user)
    return user


def _site_domain() -> str:
    return urlsplit(settings.SITE_URL).hostname or "alongside"


def message_id(row: Reminder) -> str:
    """The same for every attempt at one generation: a resent copy can be folded by the receiver."""
    return f"<reminder.{row.key}@{_site_domain()}>"


def _local_time_label(at: datetime, zone: ZoneInfo) -> str:
    local = at.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B} at {local:%H:%M} ({zone.key})"


def _context(row: Reminder) -> dict:
    session, user = row.session, row.user
    zone = user.zone
    return {
        "kind": row.kind,
        "person": user.display_name,
        "circle_name": session.circle.name,
        "when": _local_time_label(session.starts_at, zone),
        "session_url": settings.SITE_URL + reverse("circles:session-detail", args=[session.pk]),
        "video_url": session.circle.video_url,
        "is_turn": row.kind in (Kind.TURN_ASSIGNED, Kind.TURN_TOMORROW),
        "unsubscribe_url": settings.SITE_URL
        + reverse("notifications:unsubscribe", args=[unsubscribe_token(user)]),
        "preferences_url": settings.SITE_URL + reverse("accounts:profile"),
    }


def notification_title(row: Reminder) -> str:
    """The in-app title. Like the email: the circle's name and the time, nothing from inside it."""
    when = _local_time_label(row.session.starts_at, row.user.zone)
    name = row.session.circle.name
    if row.kind == Kind.TURN_ASSIGNED:
        return f"You are facilitating {name} on {when}"
    if row.kind == Kind.TURN_TOMORROW:
        return f"Your turn to facilitate {name} is tomorrow: {when}"
    if row.kind == Kind.HOUR_BEFORE:
        return f"{name} meets in an hour: {when}"
    return f"{name} meets tomorrow: {when}"


def _session_invitation(session: CircleSession) -> bytes:
    """The session as an iTIP REQUEST, without an attendee: same UID and SEQUENCE as the calendar feed.

    The description is only the session page link: the feed's purpose and notes stay out of email.
    """
    cal = icalendar.Calendar.from_ical(calendar.calendar_for([session], name=session.circle.name))
    cal["method"] = "REQUEST"
    event = cal.walk("VEVENT")[0]
    link = settings.SITE_URL + reverse("circles:session-detail", args=[session.pk])
    event["description"] = icalendar.vText(f"Session page: {link}")
    organizer = icalendar.vCalAddress(f"mailto:{settings.DEFAULT_FROM_EMAIL.rpartition('<')[2].strip('>')}")
    organizer.params["cn"] = icalendar.vText("Alongside")
    event["organizer"] = organizer
    return cal.to_ical()


def invitation_ics(row: Reminder, *, cache: dict | None = None) -> bytes:
    """The invitation for this person. `cache` keeps each session's calendar across a batch:
    building it is most of an email's cost, and only the attendee line differs between people."""
    session = row.session
    key = (session.pk, session.revision, session.starts_at)
    if cache is None or key not in cache:
        invitation = _session_invitation(session)
        if cache is None:
            cache = {}
        cache[key] = invitation
    attendee = icalendar.vCalAddress(f"mailto:{row.user.email}")
    attendee.params["cn"] = icalendar.vText(row.user.display_name)
    attendee.params["partstat"] = icalendar.vText("NEEDS-ACTION")
    attendee.params["rsvp"] = icalendar.vText("FALSE")
    holder = icalendar.Event()
    holder.add("attendee", attendee)
    line = holder.to_ical().removeprefix(b"BEGIN:VEVENT\r\n").removesuffix(b"END:VEVENT\r\n")
    return cache[key].replace(b"END:VEVENT\r\n", line + b"END:VEVENT\r\n", 1)


def reminder_email(row: Reminder, *, connection=None, cache: dict | None = None) -> EmailMultiAlternatives:
    """Plain text and HTML parts, the .ics invitation, and RFC 8058 one-click unsubscribe headers."""
    context = _context(row)
    subject = " ".join(render_to_string("emails/session_reminder.subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/session_reminder.txt", context),
        to=[row.user.email],
        connection=connection,
        headers={
            "Message-ID": message_id(row),
            "List-Unsubscribe": f"<{context['unsubscribe_url']}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
            "X-Alongside-Reminder": row.key,
        },
    )
    message.attach_alternative(render_to_string("emails/session_reminder.html", context), "text/html")
    invite = MIMEText(invitation_ics(row, cache=cache).decode(), "calendar", "utf-8")
    invite.set_param("method", "REQUEST")
    invite.add_header("Content-Disposition", "attachment", filename="session.ics")
    message.attach(invite)
    return message


# --- Sending -------------------------------------------------------------------------------------


class RefusedError(Exception):
    """The mail server answered without taking the message."""


@dataclass(frozen=True)
class SweepResult:
    sent: int = 0
    failed: int = 0


def _sweeper_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:120]


def _claim(*, worker: str, now: datetime, batch: int) -> list[int]:
    """Claim up to `batch` due rows for `worker`; rows another sweeper holds are skipped, not waited for."""
    free = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - LEASE)
    due = Reminder.objects.filter(free, status=Pending, due_at__lte=now).order_by("due_at", "id")
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            ids = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:batch])
            Reminder.objects.filter(pk__in=ids).update(claimed_at=now, claimed_by=worker)
            return ids
        # No SKIP LOCKED (SQLite): the conditional UPDATE only claims rows still free at that moment.
        ids = list(due.values_list("pk", flat=True)[:batch])
        Reminder.objects.filter(free, pk__in=ids, status=Pending).update(claimed_at=now, claimed_by=worker)
        return list(Reminder.objects.filter(pk__in=ids, claimed_by=worker).values_list("pk", flat=True))


def _mark_sent(row: Reminder, *, worker: str, now: datetime) -> bool:
    """Caller holds a transaction. Marks the row sent if it is still pending and ours; locks it."""
    return bool(
        Reminder.objects.filter(pk=row.pk, status=Pending, claimed_by=worker).update(
            status=Sent, sent_at=now, attempts=F("attempts") + 1, updated_at=now
        )
    )


def _record_failure(row: Reminder, *, worker: str, error: Exception, now: datetime) -> None:
    """Release the claim and try again later; after MAX_ATTEMPTS the row is withdrawn and logged."""
    attempts = row.attempts + 1
    gave_up = attempts >= MAX_ATTEMPTS
    # Sent too: a refusal read after the commit takes back the mark this sweep just made.
    Reminder.objects.filter(pk=row.pk, status__in=(Pending, Sent), claimed_by=worker).update(
        status=Withdrawn if gave_up else Pending,
        sent_at=None,
        attempts=attempts,
        last_error=f"{type(error).__name__}: {error}"[:300],
        due_at=now + timedelta(minutes=5 * attempts),
        claimed_at=None,
        claimed_by="",
        updated_at=now,
    )
    log.warning("reminder %s failed (attempt %s%s): %s", row.key, attempts, ", giving up" * gave_up, error)


def _still_wanted(row: Reminder) -> bool:
    """Last look at send time: an unsubscribe or a switched-off account that raced the sweep."""
    user = row.user
    if not user.is_active:
        return False
    return user.notify_by_email if row.channel == Channel.EMAIL else user.notify_in_app


def _smtp_session(mail) -> smtplib.SMTP | None:
    """The SMTP session behind Django's SMTP backend; None for other backends (tests, console)."""
    smtp = mail.connection if isinstance(mail, SmtpBackend) else None
    if smtp is not None and smtp.sock is not None:
        smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return smtp


def _send_all_but_the_dot(smtp: smtplib.SMTP, message: EmailMultiAlternatives) -> None:
    """MAIL, RCPT, DATA and the message, not the dot that ends DATA: until it, the server keeps nothing."""
    encoding = message.encoding or settings.DEFAULT_CHARSET
    sender = sanitize_address(message.from_email, encoding)
    smtp.ehlo_or_helo_if_needed()
    code, answer = smtp.mail(sender)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, answer, sender)
    for recipient in (sanitize_address(address, encoding) for address in message.recipients()):
        code, answer = smtp.rcpt(recipient)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({recipient: (code, answer)})
    smtp.putcmd("data")
    code, answer = smtp.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, answer)
    data = re.sub(rb"(?m)^\.", b"..", message.message().as_bytes(linesep="\r\n"))  # RFC 5321 4.5.2
    smtp.send(data if data.endswith(b"\r\n") else data + b"\r\n")


def _reconnect(mail) -> None:
    """A session that failed mid-DATA cannot say QUIT: drop its socket and open a new one."""
    smtp = _smtp_session(mail)
    if smtp is None:
        mail.close()
    else:
        smtp.close()
        mail.connection = None
    mail.open()


def _deliver(rows: list[Reminder], *, worker: str, mail) -> SweepResult:
    sent = failed = 0
    invitations: dict = {}
    smtp = _smtp_session(mail)
    for row in rows:
        now = timezone.now()
        if not _still_wanted(row):
            Reminder.objects.filter(pk=row.pk, status=Pending, claimed_by=worker).update(
                status=Withdrawn, claimed_at=None, claimed_by="", updated_at=now
            )
            continue
        in_app = row.channel == Channel.IN_APP
        email = None if in_app else reminder_email(row, connection=mail, cache=invitations)
        try:
            with transaction.atomic():
                if not _mark_sent(row, worker=worker, now=now):
                    continue  # replanned or re-claimed since we claimed it: the newer owner sends it
                if email is None:
                    notify(
                        row.user,
                        kind=MESSAGE_KINDS[row.kind],
                        title=notification_title(row),
                        url=reverse("circles:session-detail", args=[row.session_id]),
                        reminder_key=row.key,
                    )
                elif smtp is None:
                    if mail.send_messages([email]) != 1:
                        raise RefusedError(f"the mail server did not take reminder {row.key}")
                else:
                    _send_all_but_the_dot(smtp, email)
                    smtp.send(b".\r\n")  # COMMIT follows at once; the answer is read after it
            if email is not None and smtp is not None:
                code, answer = smtp.getreply()
                if code != 250:
                    raise RefusedError(f"the mail server refused reminder {row.key}: {code} {answer!r}")
            sent += 1
        except (smtplib.SMTPException, OSError, RefusedError) as error:
            failed += 1
            _record_failure(row, worker=worker, error=error, now=now)
            if email is not None:
                _reconnect(mail)
                smtp = _smtp_session(mail)
    return SweepResult(sent=sent, failed=failed)


def reminders_send_due(
    *, now: datetime | None = None, batch: int = BATCH, budget_seconds: float = SWEEP_BUDGET_SECONDS
) -> SweepResult:
    """Send every due reminder, batch by batch, until none is left or the time budget is spent.

    Safe to run twice and concurrently: sweepers claim disjoint rows. `now` pins the clock for tests.
    """
    worker = _sweeper_name()
    deadline = monotonic_time.monotonic() + budget_seconds
    sent = failed = 0
    mail = None
    try:
        while monotonic_time.monotonic() < deadline:
            ids = _claim(worker=worker, now=now or timezone.now(), batch=batch)
            if not ids:
                break
            rows = list(
                Reminder.objects.filter(pk__in=ids)
                .select_related("user__organisation", "session__circle")
                .order_by("due_at", "id")
            )
            if mail is None and any(r.channel == Channel.EMAIL for r in rows):
                # One SMTP connection for the whole sweep, however many batches it takes.
                mail = get_connection(fail_silently=False)
                mail.open()
            result = _deliver(rows, worker=worker, mail=mail)
            sent, failed = sent + result.sent, failed + result.failed
    finally:
        if mail is not None:
            mail.close()
        # Whatever we claimed and did not get to goes back at once rather than after the lease.
        Reminder.objects.filter(status=Pending, claimed_by=worker).update(claimed_at=None, claimed_by="")
    return SweepResult(sent=sent, failed=failed)
