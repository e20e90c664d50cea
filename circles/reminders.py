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
then another sweeper takes the rows again. Two beats or two workers sweep disjoint rows. A
batch's in-app rows create their Notification in the transaction that marks them sent, so they
are exactly once. Its emails go over the sweep's one SMTP connection (kept open across batches),
one email per transaction: a conditional UPDATE marks the row sent (only if still pending and
still ours, which also locks it).

An email and its sent mark are made final together. SMTP keeps nothing until the dot that ends
DATA, and Postgres nothing until COMMIT reaches it, so inside the transaction we send the whole
message but the dot, then the dot, then COMMIT at once, and only then read the server's answer.
A sweeper killed before the dot leaves nothing at either end (a server drops a message whose
connection closes mid-DATA; the row is pending and sent again after the lease). A sweeper killed
after COMMIT has marked exactly what it handed over (the dot was written first, and the kernel
still sends what a dead process wrote). The one window left is between writing the dot and
writing COMMIT: a socket write, no round trip. A death inside it sends that message again, with
the same Message-ID, which receiving systems use to fold duplicates. Marking several emails in
one transaction over one connection would put their round trips inside that window (a
connection carries one message at a time), which is why the unit of commit is one email.

So that a commit per email stays cheap, an email's COMMIT does not wait for the WAL to reach disk
(synchronous_commit off, for that transaction only): under load the flush was most of an email's
cost (about 3 of 3.3-3.8 ms a transaction, measured in-process). A dying sweeper changes nothing
here, since Postgres has the COMMIT either way. Only a crash of Postgres itself can forget the
marks of its last moment (up to three wal_writer_delay); those rows are pending again, still
claimed, and are sent again after the lease: duplicates with the same Message-ID, never a loss. WAL
order keeps the rest whole: a later commit that survived (a replan, a failure record) means every
mark before it did. With a synchronous commit such a crash already duplicates an email whose dot
went out before its COMMIT was flushed; this widens that to the emails of the last fraction of a
second.

What makes one connection fast is ESMTP PIPELINING (RFC 2920), which production MTAs offer: the
write that carries an email's dot also carries the next email's MAIL, RCPT and DATA (an end of
data may begin a group of commands, DATA must end one). That changes nothing the server keeps
before the dot, and after COMMIT the answers come in order: the dot's, then the next envelope's.
So an email costs one SMTP round trip, not four, and the next one's DATA is open when its
transaction begins. Without PIPELINING each command waits for its answer, on the same connection.
A refused MAIL, RCPT or DATA fails that row only (retried later; RSET before the next envelope).
A row found no longer ours when its DATA is already open is not sent: the connection is dropped,
the one way to make a server forget an open DATA, and a new one opened, as after any broken
connection. A refusal of the message after the commit (or a connection that breaks at the dot)
puts the row back to pending for a retry. Nothing is lost: a row marked sent is one whose message
the server took.

Messages are built for speed, since a sweep sends thousands: the parts one kind of reminder about
one session shares (rendered templates, the .ics) are made once per batch, links come from one
reverse() each, and the MIME bytes are written directly rather than by the email package (see
`reminder_email`).
"""

import base64
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
from email import message_from_bytes
from email.header import Header
from email.message import Message
from email.utils import formatdate, parseaddr
from typing import NamedTuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import sanitize_address
from django.db import connection, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

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


def _session_url(session: CircleSession) -> str:
    return settings.SITE_URL + reverse("circles:session-detail", args=[session.pk])


def _session_invitation(session: CircleSession) -> bytes:
    """The session as an iTIP REQUEST, without an attendee: same UID and SEQUENCE as the calendar feed.

    The description is only the session page link: the feed's purpose and notes stay out of email.
    """
    cal = icalendar.Calendar.from_ical(calendar.calendar_for([session], name=session.circle.name))
    cal["method"] = "REQUEST"
    event = cal.walk("VEVENT")[0]
    event["description"] = icalendar.vText(f"Session page: {_session_url(session)}")
    organizer = icalendar.vCalAddress(f"mailto:{settings.DEFAULT_FROM_EMAIL.rpartition('<')[2].strip('>')}")
    organizer.params["cn"] = icalendar.vText("Alongside")
    event["organizer"] = organizer
    return cal.to_ical()


# What differs between the people getting one kind of reminder about one session in one zone. The
# parts are rendered once with these stand-ins and each person's values put in after (escaped in
# the HTML part only: the plain-text parts are rendered without HTML escaping).
# NUL never reaches a rendered template (forms refuse it) and escaping leaves it as it is.
_PERSON, _UNSUBSCRIBE = "\x00person\x00", "\x00unsubscribe\x00"
_STAND_INS = re.compile("\x00(?:person|unsubscribe)\x00")
# Reversed in place of a signed unsubscribe token, to split the address around where each goes.
_ADDRESS_SLOT = "slot"


class _Parts(NamedTuple):
    subject: str
    text: str
    html: str


def _subject_header(subject: str) -> str:
    return Header(subject, None if subject.isascii() else "utf-8", header_name="Subject").encode(
        linesep="\r\n"
    )


# A dot-atom address with an ASCII domain: what Django's sanitize_address would return unchanged.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9.-]+"
)


def _address(address: str) -> str:
    return (
        address if _PLAIN_ADDRESS.fullmatch(address) else sanitize_address(address, settings.DEFAULT_CHARSET)
    )


class MessageCache:
    """What the reminder emails of one batch share, built once: the rendered parts for each
    (session, kind, zone), each session's invitation, the links. A batch's rows are read in one
    query, so a session cannot change under its cache; a new batch gets a new cache."""

    def __init__(self):
        self.sender = sanitize_address(settings.DEFAULT_FROM_EMAIL, settings.DEFAULT_CHARSET)
        self.sender_address = parseaddr(self.sender)[1]
        self._subjects: dict[str, str] = {}
        self.preferences_url = settings.SITE_URL + reverse("accounts:profile")
        # Tokens are URL-safe base64 and colons, which reverse() leaves as they are.
        link = settings.SITE_URL + reverse("notifications:unsubscribe", args=[_ADDRESS_SLOT])
        self._unsubscribe = link.rpartition(_ADDRESS_SLOT)[::2]
        self._parts: dict[tuple, _Parts] = {}
        self._invitations: dict[tuple, bytes] = {}

    def unsubscribe_url(self, user: User) -> str:
        before, after = self._unsubscribe
        return before + unsubscribe_token(user) + after

    def parts(self, row: Reminder) -> _Parts:
        session, zone = row.session, row.user.zone
        key = (session.pk, row.kind, zone.key)
        if key not in self._parts:
            context = {
                "kind": row.kind,
                "person": _PERSON,
                "circle_name": session.circle.name,
                "when": _local_time_label(session.starts_at, zone),
                "session_url": _session_url(session),
                "video_url": session.circle.video_url,
                "is_turn": row.kind in (Kind.TURN_ASSIGNED, Kind.TURN_TOMORROW),
                "unsubscribe_url": _UNSUBSCRIBE,
                "preferences_url": self.preferences_url,
            }
            self._parts[key] = _Parts(
                subject=" ".join(render_to_string("emails/session_reminder.subject.txt", context).split()),
                text=render_to_string("emails/session_reminder.txt", context),
                html=render_to_string("emails/session_reminder.html", context),
            )
        return self._parts[key]

    def subject_header(self, subject: str) -> str:
        if subject not in self._subjects:
            self._subjects[subject] = _subject_header(subject)
        return self._subjects[subject]

    def invitation(self, row: Reminder) -> bytes:
        """The session's invitation with this person as its attendee: only that line differs."""
        session, user = row.session, row.user
        if session.pk not in self._invitations:
            self._invitations[session.pk] = _session_invitation(session)
        attendee = icalendar.vCalAddress(f"mailto:{user.email}")
        attendee.params["cn"] = icalendar.vText(user.display_name)
        attendee.params["partstat"] = icalendar.vText("NEEDS-ACTION")
        attendee.params["rsvp"] = icalendar.vText("FALSE")
        holder = icalendar.Event()
        holder.add("attendee", attendee)
        line = holder.to_ical().removeprefix(b"BEGIN:VEVENT\r\n").removesuffix(b"END:VEVENT\r\n")
        return self._invitations[session.pk].replace(b"END:VEVENT\r\n", line + b"END:VEVENT\r\n", 1)


class ReminderEmail(EmailMessage):
    """A reminder whose MIME bytes are built once (`raw`, CRLF line ends): the SMTP path sends them
    as they are, and `message()` parses the same bytes for Django's other backends (console, the
    test outbox), so every backend carries one and the same message."""

    def __init__(self, raw: bytes, *, envelope: tuple[str, str], **kwargs):
        """`envelope` is the bare sender and recipient addresses for MAIL and RCPT."""
        super().__init__(**kwargs)
        self.raw, self.envelope = raw, envelope

    def message(self) -> Message:
        return message_from_bytes(self.raw)


def reminder_email(row: Reminder, *, connection=None, cache: MessageCache | None = None) -> ReminderEmail:
    """Plain text and HTML parts, the .ics invitation, and RFC 8058 one-click unsubscribe headers.

    Nothing from inside the circle: its name, the time, links, and the person's own name."""
    cache = cache or MessageCache()
    user, parts = row.user, cache.parts(row)
    unsubscribe_url = cache.unsubscribe_url(user)
    # The plain-text parts are rendered without HTML escaping; only the HTML part gets escaped values.
    plain = {_PERSON: user.display_name, _UNSUBSCRIBE: unsubscribe_url}
    escaped = {stand_in: escape(value) for stand_in, value in plain.items()}
    subject, text = (_STAND_INS.sub(lambda m: plain[m[0]], part) for part in (parts.subject, parts.text))
    html = _STAND_INS.sub(lambda m: escaped[m[0]], parts.html)
    recipient = _address(user.email)
    headers = {
        "Message-ID": message_id(row),
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Auto-Submitted": "auto-generated",
        "X-Alongside-Reminder": row.key,
    }
    alternative = _multipart("alternative", [_text_part("plain", text), _text_part("html", html)])
    mixed = _multipart("mixed", [alternative, _invitation_part(cache.invitation(row))])
    head = {
        "Subject": cache.subject_header(subject),
        "From": cache.sender,
        "To": recipient,
        "Date": formatdate(localtime=settings.EMAIL_USE_LOCALTIME),
        **headers,
        "MIME-Version": "1.0",
    }
    raw = "".join(f"{name}: {value}\r\n" for name, value in head.items()).encode("ascii") + mixed
    return ReminderEmail(
        raw,
        envelope=(cache.sender_address, recipient),
        subject=subject,
        body=text,
        to=[user.email],
        connection=connection,
        headers=headers,
    )


def _text_part(subtype: str, text: str) -> bytes:
    """A text part as Django writes one: 8-bit (7-bit when ASCII) unless a line is too long for SMTP."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n").encode()
    if max(map(len, data.split(b"\r\n"))) <= 998:  # RFC 5322 2.1.1
        encoding = "7bit" if data.isascii() else "8bit"
    else:
        data, encoding = _base64(data), "base64"
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n'
    return head.encode() + data


def _invitation_part(invitation: bytes) -> bytes:
    return (
        b'Content-Type: text/calendar; charset="utf-8"; method="REQUEST"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="session.ics"\r\n\r\n' + _base64(invitation)
    )


def _base64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _multipart(subtype: str, parts: list[bytes]) -> bytes:
    """A multipart entity, from its Content-Type header on, with a boundary found in none of its parts."""
    boundary = b"=_" + uuid.uuid4().hex.encode()
    while any(boundary in part for part in parts):
        boundary = b"=_" + uuid.uuid4().hex.encode()
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return b'Content-Type: multipart/%s; boundary="%s"\r\n\r\n%s--%s--\r\n' % (
        subtype.encode(),
        boundary,
        body,
        boundary,
    )


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


# The UPDATE that marks one row sent, written out: the ORM compiled it afresh for every email,
# 0.3 ms of CPU each, a third of the sweeper's (measured in-process over 1,000 emails).
_MARK_SENT = (
    f'UPDATE "{Reminder._meta.db_table}" SET status = %s, sent_at = %s, attempts = attempts + 1, '  # noqa: S608  # nosec B608  # the model's own table name, values bound
    "updated_at = %s WHERE id = %s AND status = %s AND claimed_by = %s"
)


def _mark_sent(row: Reminder, *, worker: str, now: datetime) -> bool:
    """Caller holds a transaction. Marks the row sent if it is still pending and ours, which locks
    it; says whether it did. A row replanned or re-claimed since we claimed it is left to its new owner."""
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(_MARK_SENT, [Sent, at, at, row.pk, Pending, worker])
        return cursor.rowcount == 1


def _commit_without_waiting_for_the_disk() -> None:
    """Caller holds a transaction: its COMMIT returns once Postgres has it, before the WAL is on
    disk (see the module docstring for why an email's transaction may)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


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


SEND_ERRORS = (smtplib.SMTPException, OSError, RefusedError)
# The answers that accept MAIL, RCPT and DATA.
ENVELOPE_ACCEPTED = ((250,), (250, 251), (354,))


def _envelope_commands(email: ReminderEmail) -> list[bytes]:
    sender, recipient = email.envelope
    return [f"MAIL FROM:<{sender}>\r\n".encode(), f"RCPT TO:<{recipient}>\r\n".encode(), b"DATA\r\n"]


def _refusal(step: int, code: int, answer: bytes, email: ReminderEmail) -> smtplib.SMTPException:
    """The error for a refused envelope command: MAIL (step 0), RCPT (1) or DATA (2)."""
    if step == 0:
        return smtplib.SMTPSenderRefused(code, answer, email.envelope[0])
    if step == 1:
        return smtplib.SMTPRecipientsRefused({email.envelope[1]: (code, answer)})
    return smtplib.SMTPDataError(code, answer)


class _Outbox:
    """The sweep's one mail connection, opened when first needed, and where its SMTP mail
    transaction stands: `open_for` is the reminder whose DATA the server has accepted and waits
    for, `dirty` an envelope refused part way (RSET before the next), `broken` a connection in an
    unknown state (dropped and opened again before its next use). Other backends (tests, console)
    send through theirs one message at a time."""

    def __init__(self):
        self._mail = None
        self.open_for: int | None = None
        self.dirty = self.broken = False

    @property
    def mail(self):
        if self._mail is None:
            self._mail = get_connection(fail_silently=False)
            self._mail.open()
            self._ready()
        return self._mail

    @property
    def smtp(self) -> smtplib.SMTP | None:
        """The SMTP session behind Django's SMTP backend; None for other backends."""
        return self.mail.connection if isinstance(self.mail, SmtpBackend) else None

    @property
    def pipelining(self) -> bool:
        """RFC 2920: the server reads commands sent without waiting for each answer."""
        return self.smtp.has_extn("pipelining")

    def reopen_if_broken(self) -> None:
        """A connection in an unknown state is dropped and opened again; a server that is down
        fails the sweep (its claims are released) rather than each row."""
        if self.broken:
            self._drop()
            self._mail.open()
            self._ready()
            self.open_for, self.dirty, self.broken = None, False, False

    def open_envelope(self, pk: int, email: ReminderEmail) -> smtplib.SMTPException | None:
        """MAIL, RCPT and DATA for reminder `pk` (one round trip with PIPELINING, else one each).
        Returns the server's refusal, None once it waits for the message; raises if the
        connection fails."""
        if self.pipelining:
            self.write(self.envelope(email))
            return self.read_envelope(pk, email)
        if self.dirty:
            self.write(b"RSET\r\n")
            self.reply()
            self.dirty = False
        for step, (command, accepted) in enumerate(
            zip(_envelope_commands(email), ENVELOPE_ACCEPTED, strict=True)
        ):
            self.write(command)
            code, answer = self.reply()
            if code not in accepted:
                self.dirty = True
                return _refusal(step, code, answer, email)
        self.open_for = pk
        return None

    def envelope(self, email: ReminderEmail) -> bytes:
        """A pipelined envelope; RFC 2920 lets RSET begin it and DATA must end it."""
        return b"RSET\r\n" * self.dirty + b"".join(_envelope_commands(email))

    def read_envelope(self, pk: int, email: ReminderEmail) -> smtplib.SMTPException | None:
        """The answers to a pipelined `envelope(email)`: the refusal, or None once DATA is open."""
        if self.dirty:
            self.reply()  # RSET's; should it fail, MAIL's answer says so
            self.dirty = False
        answers = [self.reply() for _ in ENVELOPE_ACCEPTED]
        refused = [
            _refusal(step, code, answer, email)
            for step, ((code, answer), accepted) in enumerate(zip(answers, ENVELOPE_ACCEPTED, strict=True))
            if code not in accepted
        ]
        if not refused:
            self.open_for = pk
            return None
        if answers[-1][0] == 354:
            # DATA opened for an envelope that was refused: the server waits for a message we
            # will not send, and only a closed connection makes it drop the transaction.
            self.broken = True
        else:
            self.dirty = True
        return refused[0]

    def send_message(self, email: ReminderEmail) -> None:
        """The message of the open DATA, all but the dot that ends it: until then the server keeps nothing."""
        self.write(re.sub(rb"(?m)^\.", b"..", email.raw))  # RFC 5321 4.5.2; raw ends with CRLF

    def end_message(self, after: ReminderEmail | None = None) -> None:
        """The dot that ends DATA, and in the same write the envelope of the email `after` it:
        RFC 2920 lets the end of data begin a group. Its answers come first, then the envelope's."""
        self.write(b".\r\n" + (self.envelope(after) if after is not None else b""))
        self.open_for = None

    def abandon(self) -> None:
        """Give up the open DATA: only a dropped connection makes the server forget it."""
        self.open_for, self.broken = None, True

    def write(self, data: bytes) -> None:
        try:
            self.smtp.send(data)
        except SEND_ERRORS:
            self.broken = True
            raise

    def reply(self) -> tuple[int, bytes]:
        try:
            return self.smtp.getreply()
        except SEND_ERRORS:
            self.broken = True
            raise

    def close(self) -> None:
        if self._mail is None:
            return
        if self.broken or self.open_for is not None:
            self._drop()  # QUIT inside DATA would be read as the message, and wait for an answer
        self._mail.close()

    def _drop(self) -> None:
        if self._mail.connection is not None:
            self._mail.connection.close()
            self._mail.connection = None

    def _ready(self) -> None:
        if isinstance(self._mail, SmtpBackend):
            # Without it Nagle holds each lone dot until the server's delayed ACK, ~40 ms an email.
            self._mail.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._mail.connection.ehlo_or_helo_if_needed()


def _send_over_smtp(
    rows: list[Reminder], emails: dict[int, ReminderEmail], *, worker: str, outbox: _Outbox, now: datetime
) -> SweepResult:
    """Send the rows' emails over the sweep's SMTP connection, each in its own transaction.

    The row is marked sent, its message goes out but the dot, then the dot and at once COMMIT,
    and only then are the answers read (see the module docstring for why that is exactly once).
    With PIPELINING the write that carries the dot also carries the next email's MAIL, RCPT and
    DATA, so an email costs one SMTP round trip instead of four.
    """
    sent = failed = 0
    refused: set[int] = set()  # rows whose pipelined envelope the server refused
    for n, row in enumerate(rows):
        if row.pk in refused:
            continue
        email = emails[row.pk]
        if outbox.open_for != row.pk:
            outbox.reopen_if_broken()
            try:
                error = outbox.open_envelope(row.pk, email)
            except SEND_ERRORS as broken:
                error = broken
            if error is not None:
                _record_failure(row, worker=worker, error=error, now=now)
                failed += 1
                continue
        after = rows[n + 1] if n + 1 < len(rows) and outbox.pipelining else None
        with transaction.atomic():
            _commit_without_waiting_for_the_disk()
            if not _mark_sent(row, worker=worker, now=now):
                outbox.abandon()  # replanned or re-claimed since we claimed it
                continue
            try:
                outbox.send_message(email)
            except SEND_ERRORS as error:
                _record_failure(row, worker=worker, error=error, now=now)  # no dot went out: unmark it
                failed += 1
                continue
            try:
                outbox.end_message(emails[after.pk] if after is not None else None)
                error = None
            except SEND_ERRORS as broken:
                error = broken  # COMMIT must follow the dot at once
        try:
            if error is None:
                code, answer = outbox.reply()
                if code != 250:
                    error = RefusedError(f"the mail server refused reminder {row.key}: {code} {answer!r}")
        except SEND_ERRORS as broken:
            error = broken
        if error is not None:
            _record_failure(row, worker=worker, error=error, now=now)
            failed += 1
        else:
            sent += 1
        if after is not None and not outbox.broken:
            try:
                refusal = outbox.read_envelope(after.pk, emails[after.pk])
            except SEND_ERRORS:
                continue  # the connection broke: the next row opens its envelope on a new one
            if refusal is not None:
                _record_failure(after, worker=worker, error=refusal, now=now)
                refused.add(after.pk)
                failed += 1
    return SweepResult(sent=sent, failed=failed)


def _send_each(
    rows: list[Reminder], emails: dict[int, ReminderEmail], *, worker: str, outbox: _Outbox, now: datetime
) -> SweepResult:
    """Other backends (tests, console): each email sent in the transaction that marks it."""
    sent = failed = 0
    for row in rows:
        with transaction.atomic():
            if not _mark_sent(row, worker=worker, now=now):
                continue
            try:
                if outbox.mail.send_messages([emails[row.pk]]) != 1:
                    raise RefusedError(f"the mail server did not take reminder {row.key}")
                sent += 1
            except SEND_ERRORS as error:
                _record_failure(row, worker=worker, error=error, now=now)
                failed += 1
    return SweepResult(sent=sent, failed=failed)


def _deliver_batch(rows: list[Reminder], *, worker: str, outbox: _Outbox) -> SweepResult:
    """Withdraw the rows no longer wanted, then create the in-app notices (one transaction) and
    send the emails (one transaction each)."""
    now = timezone.now()
    wanted = [row for row in rows if _still_wanted(row)]
    if len(wanted) < len(rows):
        unwanted = {row.pk for row in rows} - {row.pk for row in wanted}
        Reminder.objects.filter(pk__in=unwanted, status=Pending, claimed_by=worker).update(
            status=Withdrawn, claimed_at=None, claimed_by="", updated_at=now
        )
    notified = 0
    with transaction.atomic():
        for row in wanted:
            if row.channel == Channel.IN_APP and _mark_sent(row, worker=worker, now=now):
                notify(
                    row.user,
                    kind=MESSAGE_KINDS[row.kind],
                    title=notification_title(row),
                    url=reverse("circles:session-detail", args=[row.session_id]),
                    reminder_key=row.key,
                )
                notified += 1
    cache = MessageCache()
    outgoing = [row for row in wanted if row.channel == Channel.EMAIL]
    emails = {row.pk: reminder_email(row, cache=cache) for row in outgoing}
    if not outgoing:
        result = SweepResult()
    elif outbox.smtp is not None:
        result = _send_over_smtp(outgoing, emails, worker=worker, outbox=outbox, now=now)
    else:
        result = _send_each(outgoing, emails, worker=worker, outbox=outbox, now=now)
    return SweepResult(sent=result.sent + notified, failed=result.failed)


def reminders_send_due(
    *, now: datetime | None = None, batch: int = BATCH, budget_seconds: float = SWEEP_BUDGET_SECONDS
) -> SweepResult:
    """Send every due reminder, batch by batch, until none is left or the time budget is spent.

    Safe to run twice and concurrently: sweepers claim disjoint rows. `now` pins the clock for
    tests. Not to be called inside a transaction: each email's is committed on its own.
    """
    worker = _sweeper_name()
    deadline = monotonic_time.monotonic() + budget_seconds
    sent = failed = 0
    outbox = _Outbox()
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
            result = _deliver_batch(rows, worker=worker, outbox=outbox)
            sent, failed = sent + result.sent, failed + result.failed
    finally:
        outbox.close()
        # Whatever we claimed and did not get to goes back at once rather than after the lease.
        Reminder.objects.filter(status=Pending, claimed_by=worker).update(claimed_at=None, claimed_by="")
    return SweepResult(sent=sent, failed=failed)
