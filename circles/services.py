"""Every write to circles, schedules and the facilitation rota.

Keyword-only arguments, one transaction each, audited through `accounts.services.audit`. Rules a
form might also check are enforced here, because views, tasks and the shell all come through
these functions; errors are `ValidationError`s keyed by form field so a view can hand them back.
Access (who may call what) is decided by `circles.access` before a view gets here.
"""

import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format

from accounts.models import User
from accounts.services import audit
from circles import live, reminders, scheduling
from circles.models import (
    MAX_CAPACITY,
    AwayPeriod,
    CalendarFeed,
    Circle,
    CircleSession,
    CoverRequest,
    Membership,
    SessionTemplate,
    TemplateRound,
)

Status = CircleSession.Status
CADENCE_FIELDS = (
    "time_zone",
    "frequency",
    "interval_weeks",
    "week_of_month",
    "start_date",
    "end_date",
    "occurrence_count",
    "start_time",
    "duration_minutes",
)
CIRCLE_FIELDS = ("name", "purpose", "agreements", "capacity", "video_url", *CADENCE_FIELDS)
UNPLANNED_REASON = "The circle's schedule changed, so it no longer meets on this date."
ARCHIVED_REASON = "This circle has closed."
NONEXISTENT_REASON = (
    "The clocks go forward at this time in {zone}, so {time} does not happen on this day. "
    "A facilitator can move this session."
)
AMBIGUOUS_NOTE = "The clocks go back at this time in {zone}: we meet at the first {time}."
REPLAN_SLACK = timedelta(days=1)


# --- Cadence rules ---------------------------------------------------------------------------


def _time_label(at: time) -> str:
    return at.strftime("%H:%M")


def cadence_errors(cadence: scheduling.Cadence) -> dict[str, str]:
    """What is wrong with a cadence, keyed by form field; empty when it is fine."""
    errors = {}
    if cadence.end_date is not None and cadence.end_date < cadence.start_date:
        errors["end_date"] = "The last date is before the first one. Pick an end date after the start date."
    if cadence.end_date is not None and cadence.occurrence_count is not None:
        errors["occurrence_count"] = "Give an end date or a number of sessions, not both."
    if cadence.occurrence_count is not None and cadence.occurrence_count < 1:
        errors["occurrence_count"] = "A circle needs at least one session."
    if cadence.frequency == scheduling.EVERY_N_WEEKS and not 2 <= cadence.interval_weeks <= 12:
        errors["interval_weeks"] = "For “every few weeks”, choose between 2 and 12 weeks."
    if cadence.frequency == scheduling.MONTHLY_NTH_WEEKDAY and cadence.week_of_month not in (1, 2, 3, 4, -1):
        errors["week_of_month"] = (
            "For a monthly circle, choose which week of the month (first to fourth, or last)."
        )
    if not 15 <= cadence.duration_minutes <= 240:
        errors["duration_minutes"] = "A session lasts between 15 minutes and 4 hours."
    if errors:
        return errors
    problems = scheduling.problems_within(cadence)
    if problems:
        first = problems[0]
        when = date_format(first.date, "j F Y")
        if first.problem == scheduling.NONEXISTENT:
            message = (
                f"On {when} the clocks in {cadence.time_zone} go forward and "
                f"{_time_label(cadence.start_time)} does not exist that day. "
                "Choose a time outside the hour the clocks change."
            )
        else:
            message = (
                f"On {when} the clocks in {cadence.time_zone} go back and "
                f"{_time_label(cadence.start_time)} happens twice that day. "
                "Choose a time outside the hour the clocks change."
            )
        errors["start_time"] = message
    return errors


def _check_circle_details(organisation_id: int, template: SessionTemplate, details: dict) -> None:
    unknown = set(details) - set(CIRCLE_FIELDS)
    if unknown:
        raise TypeError(f"Unexpected circle fields: {sorted(unknown)}")
    errors = {}
    if not details["name"].strip():
        errors["name"] = "Give the circle a name."
    if not 2 <= details["capacity"] <= MAX_CAPACITY:
        errors["capacity"] = f"A circle holds between 2 and {MAX_CAPACITY} people."
    if template.organisation_id not in (None, organisation_id):
        errors["template"] = "That session template belongs to another organisation."
    cadence = scheduling.Cadence(**{field: details[field] for field in CADENCE_FIELDS})
    errors.update(cadence_errors(cadence))
    if errors:
        raise ValidationError(errors)


# --- Circles ---------------------------------------------------------------------------------


def _materialise_on_commit(circle: Circle) -> None:
    transaction.on_commit(partial(circle_materialise, circle_id=circle.pk))


def circle_create(*, actor: User, template: SessionTemplate, **details) -> Circle:
    """A facilitator starts a circle and becomes its first member, as circle facilitator.

    Sessions for the coming weeks are planned as soon as the circle is saved.
    """
    if not actor.is_facilitator or actor.organisation_id is None:
        raise ValidationError("Only facilitators can start a circle.")
    _check_circle_details(actor.organisation_id, template, details)
    with transaction.atomic():
        circle = Circle.objects.create(
            organisation_id=actor.organisation_id, template=template, created_by=actor, **details
        )
        Membership.objects.create(
            circle=circle, user=actor, role=Membership.Role.FACILITATOR, rota_opt_in=True
        )
        audit(actor=actor, action="circle.created", subject=circle.name, data={"circle": circle.pk})
        _materialise_on_commit(circle)
    return circle


def circle_update(*, actor: User, circle: Circle, template: SessionTemplate, **details) -> Circle:
    """Change a circle. A changed cadence re-plans future sessions; past and moved ones stay as they were."""
    _check_circle_details(circle.organisation_id, template, details)
    with transaction.atomic():
        circle = Circle.objects.select_for_update().get(pk=circle.pk)
        members = circle.memberships.filter(left_at__isnull=True).count()
        if details["capacity"] < members:
            raise ValidationError(
                {
                    "capacity": f"{members} people are in this circle already. "
                    "Remove someone first, or keep room for them."
                }
            )
        changed = sorted(field for field, value in details.items() if getattr(circle, field) != value) + (
            ["template"] if circle.template_id != template.pk else []
        )
        for field, value in details.items():
            setattr(circle, field, value)
        circle.template = template
        circle.save()
        if changed:
            audit(actor=actor, action="circle.updated", subject=circle.name, data={"changed": changed})
        if set(changed) & set(CADENCE_FIELDS):
            _materialise_on_commit(circle)
    return circle


def circle_archive(*, actor: User, circle: Circle, now: datetime | None = None) -> Circle:
    """Close a circle: no more sessions are planned and the coming ones are cancelled. Safe to call twice."""
    now = now or timezone.now()
    with transaction.atomic():
        archived = Circle.objects.filter(pk=circle.pk, archived_at__isnull=True).update(archived_at=now)
        if archived:
            _cancel(
                circle.sessions.filter(starts_at__gt=now, status=Status.SCHEDULED),
                reason=ARCHIVED_REASON,
                now=now,
            )
            reminders.reminders_replan_circle(circle=circle, now=now)
            audit(actor=actor, action="circle.archived", subject=circle.name, data={"circle": circle.pk})
        circle.refresh_from_db(fields=["archived_at"])
    return circle


def _cancel(sessions, *, reason: str, now: datetime, unplanned: bool = False) -> int:
    count = 0
    for session in sessions:
        session.status = Status.CANCELLED
        session.change_reason = reason
        session.unplanned = unplanned
        session.revision += 1
        session.updated_at = now
        session.save(update_fields=["status", "change_reason", "unplanned", "revision", "updated_at"])
        count += 1
    return count


# --- Membership ------------------------------------------------------------------------------


def membership_add(
    *, actor: User, circle: Circle, person: User, role: str = Membership.Role.MEMBER
) -> Membership:
    """Add someone from the circle's organisation, within its capacity."""
    if person.organisation_id != circle.organisation_id:
        raise ValidationError(
            {"person": "That person belongs to another organisation, so they can't join this circle."}
        )
    if not person.is_active:
        raise ValidationError({"person": f"{person.display_name}'s account is switched off."})
    if not person.is_member:
        raise ValidationError({"person": f"{person.display_name} doesn't take part in circles."})
    if role not in Membership.Role.values:
        raise ValidationError({"role": "Choose member or circle facilitator."})
    with transaction.atomic():
        # The lock makes the capacity check and the insert one step for concurrent adds.
        circle = Circle.objects.select_for_update().get(pk=circle.pk)
        if circle.is_archived:
            raise ValidationError("This circle has closed, so nobody new can join it.")
        active = circle.memberships.filter(left_at__isnull=True)
        if active.filter(user=person).exists():
            raise ValidationError({"person": f"{person.display_name} is already in this circle."})
        if active.count() >= circle.capacity:
            raise ValidationError(
                {
                    "person": f"This circle is full ({circle.capacity} people). Raise its capacity "
                    f"(up to {MAX_CAPACITY}) or remove someone first."
                }
            )
        membership = Membership.objects.create(circle=circle, user=person, role=role)
        reminders.reminders_replan_circle(circle=circle)
        audit(
            actor=actor,
            action="circle.member_added",
            subject=circle.name,
            data={"circle": circle.pk, "person": person.pk, "role": role},
        )
    return membership


def membership_end(*, actor: User, membership: Membership, now: datetime | None = None) -> Membership:
    """Someone leaves (or is removed from) a circle. Their coming turns pass to others.

    The last circle facilitator cannot go: the circle would be left with nobody to look after it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        circle = Circle.objects.select_for_update().get(pk=membership.circle_id)
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        if membership.left_at is not None:
            return membership
        if membership.is_circle_facilitator and not circle.is_archived:
            others = circle.memberships.filter(
                left_at__isnull=True, role=Membership.Role.FACILITATOR
            ).exclude(pk=membership.pk)
            if not others.exists():
                who = "You are" if actor.pk == membership.user_id else f"{membership.user.display_name} is"
                raise ValidationError(
                    f"{who} this circle's only facilitator. Add another circle facilitator first, "
                    "or close the circle."
                )
        membership.left_at = now
        membership.save(update_fields=["left_at"])
        live.disconnect_user_from_circle(membership.user_id, circle.pk)
        CoverRequest.objects.filter(
            session__circle=circle, requested_by_id=membership.user_id, accepted_at__isnull=True
        ).delete()
        action = "circle.left" if actor.pk == membership.user_id else "circle.member_removed"
        audit(
            actor=actor,
            action=action,
            subject=circle.name,
            data={"circle": circle.pk, "person": membership.user_id},
        )
        _fill_rota(circle, now=now)
    return membership


def rota_opt_set(*, membership: Membership, opt_in: bool, now: datetime | None = None) -> Membership:
    """A member says whether they will take turns facilitating. Opting out hands on their coming turns."""
    now = now or timezone.now()
    with transaction.atomic():
        circle = Circle.objects.select_for_update().get(pk=membership.circle_id)
        updated = Membership.objects.filter(pk=membership.pk, left_at__isnull=True).update(rota_opt_in=opt_in)
        if not updated:
            raise ValidationError("You are no longer in this circle.")
        membership.rota_opt_in = opt_in
        _fill_rota(circle, now=now)
    return membership


# --- Away dates ------------------------------------------------------------------------------


def away_add(
    *, user: User, starts_on: date, ends_on: date, note: str = "", now: datetime | None = None
) -> AwayPeriod:
    """Mark dates away: no facilitation turns then. Turns already given for those dates pass to others."""
    if ends_on < starts_on:
        raise ValidationError({"ends_on": "The last day away is before the first. Pick a later end date."})
    now = now or timezone.now()
    with transaction.atomic():
        away = AwayPeriod.objects.create(user=user, starts_on=starts_on, ends_on=ends_on, note=note.strip())
        for circle in Circle.objects.select_for_update().filter(
            memberships__user=user, memberships__left_at__isnull=True, archived_at__isnull=True
        ):
            _fill_rota(circle, now=now)
    return away


def away_remove(*, user: User, away: AwayPeriod) -> None:
    with transaction.atomic():
        AwayPeriod.objects.filter(pk=away.pk, user=user).delete()
        reminders.reminders_replan_user(user=user)


# --- Sessions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaterialiseResult:
    created: int = 0
    updated: int = 0
    cancelled: int = 0


def _planned_state(occurrence: scheduling.Occurrence, zone_name: str, at: time) -> tuple[str, str]:
    """The status and note a freshly planned occurrence gets, given any clock-change trouble."""
    if occurrence.problem == scheduling.NONEXISTENT:
        return Status.SKIPPED, NONEXISTENT_REASON.format(zone=zone_name, time=_time_label(at))
    if occurrence.problem == scheduling.AMBIGUOUS:
        return Status.SCHEDULED, AMBIGUOUS_NOTE.format(zone=zone_name, time=_time_label(at))
    return Status.SCHEDULED, ""


def circle_materialise(*, circle_id: int, now: datetime | None = None) -> MaterialiseResult:
    """Plan the circle's sessions for the rolling horizon and (re)assign facilitators.

    Safe to run twice and concurrently: the circle row is locked, and the (circle, occurrence
    date) unique key turns a duplicate insert into nothing. Only sessions that have not started
    are touched, and a session moved or changed by hand is left alone.
    """
    now = now or timezone.now()
    with transaction.atomic():
        circle = Circle.objects.select_for_update().filter(pk=circle_id).first()
        if circle is None or circle.is_archived:
            return MaterialiseResult()
        zone = ZoneInfo(circle.time_zone)
        start, end = scheduling.horizon(now, zone)
        plan = {
            o.date: o
            for o in scheduling.occurrences(scheduling.Cadence.of(circle), start=start, end=end)
            if o.ends_at > now
        }
        existing = {
            s.occurrence_date: s
            for s in circle.sessions.filter(
                Q(occurrence_date__gte=start - REPLAN_SLACK) | Q(starts_at__gt=now)
            )
        }
        created, updated, cancelled = [], 0, 0
        for day, occurrence in plan.items():
            status, note = _planned_state(occurrence, circle.time_zone, circle.start_time)
            session = existing.get(day)
            if session is None:
                created.append(
                    CircleSession(
                        circle=circle,
                        occurrence_date=day,
                        starts_at=occurrence.starts_at,
                        ends_at=occurrence.ends_at,
                        status=status,
                        change_reason=note,
                        unplanned=status != Status.SCHEDULED,
                        created_at=now,
                        updated_at=now,
                    )
                )
                continue
            if session.starts_at <= now or session.moved:
                continue
            replannable = session.status == Status.SCHEDULED or (
                session.status in (Status.CANCELLED, Status.SKIPPED) and session.unplanned
            )
            wanted = (occurrence.starts_at, occurrence.ends_at, status, note)
            if (
                replannable
                and (session.starts_at, session.ends_at, session.status, session.change_reason) != wanted
            ):
                session.starts_at, session.ends_at, session.status, session.change_reason = wanted
                session.unplanned = status != Status.SCHEDULED
                session.revision += 1
                session.updated_at = now
                session.save()
                updated += 1
        dropped = [
            s
            for day, s in existing.items()
            if day not in plan
            and start <= day <= end
            and s.starts_at > now
            and not s.moved
            and s.status == Status.SCHEDULED
        ]
        cancelled = _cancel(dropped, reason=UNPLANNED_REASON, now=now, unplanned=True)
        CircleSession.objects.bulk_create(created, ignore_conflicts=True)
        _fill_rota(circle, now=now)
    return MaterialiseResult(created=len(created), updated=updated, cancelled=cancelled)


def sessions_materialise_all(*, now: datetime | None = None) -> MaterialiseResult:
    """Plan every open circle. Each circle is its own transaction, so one bad circle stops nothing else."""
    now = now or timezone.now()
    totals = Counter()
    for circle_id in Circle.objects.filter(archived_at__isnull=True).values_list("pk", flat=True):
        result = circle_materialise(circle_id=circle_id, now=now)
        totals.update(created=result.created, updated=result.updated, cancelled=result.cancelled)
    return MaterialiseResult(**totals)


SESSION_AUDIT_ACTIONS = {"skip": "session.skipped", "cancel": "session.cancelled", "move": "session.moved"}
SESSION_ACTIONS = tuple(SESSION_AUDIT_ACTIONS)


def session_change(
    *,
    actor: User,
    session: CircleSession,
    action: str,
    reason: str,
    new_date: date | None = None,
    new_time: time | None = None,
    now: datetime | None = None,
) -> CircleSession:
    """Skip, cancel or move one session, with a reason members will see. Re-planning leaves it alone."""
    now = now or timezone.now()
    reason = reason.strip()
    errors = {}
    if action not in SESSION_ACTIONS:
        errors["action"] = "Choose skip, cancel or move."
    if not reason:
        errors["reason"] = "Tell members why, in a sentence: they will see it with the session."
    if session.starts_at <= now:
        errors["action"] = "This session has already started, so it can't be changed."
    elif session.status not in (Status.SCHEDULED, Status.SKIPPED, Status.CANCELLED):
        errors["action"] = "This session is under way or over, so it can't be changed."
    circle = session.circle
    zone = ZoneInfo(circle.time_zone)
    if action == "move" and not errors:
        if new_date is None or new_time is None:
            errors["new_date"] = "Give the new date and time."
        else:
            problem = scheduling.wall_clock_problem(new_date, new_time, zone)
            if problem == scheduling.NONEXISTENT:
                errors["new_time"] = (
                    f"The clocks in {circle.time_zone} go forward that night and {_time_label(new_time)} "
                    "does not exist. Choose another time."
                )
            elif problem == scheduling.AMBIGUOUS:
                errors["new_time"] = (
                    f"The clocks in {circle.time_zone} go back that night and {_time_label(new_time)} "
                    "happens twice. Choose another time."
                )
            elif scheduling.local_start(new_date, new_time, zone) <= now:
                errors["new_date"] = "Choose a time in the future."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        session = CircleSession.objects.select_for_update().get(pk=session.pk)
        if action == "move":
            starts_at = scheduling.local_start(new_date, new_time, zone)
            session.ends_at = starts_at + (session.ends_at - session.starts_at)
            session.starts_at = starts_at
            session.status = Status.SCHEDULED
            session.moved = True
        else:
            session.status = Status.SKIPPED if action == "skip" else Status.CANCELLED
        session.change_reason = reason
        session.unplanned = False
        session.revision += 1
        session.updated_at = now
        session.save()
        audit(
            actor=actor,
            action=SESSION_AUDIT_ACTIONS[action],
            subject=circle.name,
            data={"session": session.pk},
        )
        _fill_rota(circle, now=now)
    session.circle = circle
    return session


# --- Facilitation rota -----------------------------------------------------------------------


def _fill_rota(circle: Circle, *, now: datetime) -> None:
    """Give every coming session a facilitator, fairly. Caller holds the circle lock.

    Eligible: an active member who opted in, is not away on the session's local date, and for
    whom it would not be their first session in the circle. Among them the one with the fewest
    turns (held or planned) goes first, then whoever had a turn least recently. An existing
    assignment stays while its person is still eligible, so plans do not churn.
    """
    zone = ZoneInfo(circle.time_zone)
    members = {
        m.user_id: m.joined_at
        for m in circle.memberships.filter(left_at__isnull=True, rota_opt_in=True).only(
            "user_id", "joined_at"
        )
    }
    held = list(
        circle.sessions.exclude(status__in=(Status.SKIPPED, Status.CANCELLED))
        .order_by("starts_at", "id")
        .only("id", "starts_at", "ends_at", "status", "facilitator_id", "revision", "updated_at")
    )
    first_session = {}
    for user_id, joined_at in members.items():
        first = next((s for s in held if s.starts_at >= joined_at), None)
        first_session[user_id] = first.pk if first else None
    away = {}
    today = now.astimezone(zone).date()
    for period in AwayPeriod.objects.filter(user_id__in=members, ends_on__gte=today):
        away.setdefault(period.user_id, []).append((period.starts_on, period.ends_on))

    counts = Counter(s.facilitator_id for s in held if s.facilitator_id)
    last = {}
    for s in held:
        if s.facilitator_id and s.starts_at <= now:
            last[s.facilitator_id] = s.starts_at

    def eligible(user_id: int | None, session: CircleSession) -> bool:
        if user_id not in members or first_session[user_id] == session.pk:
            return False
        day = session.starts_at.astimezone(zone).date()
        return not any(start <= day <= end for start, end in away.get(user_id, ()))

    never = datetime.min.replace(tzinfo=UTC)
    for session in held:
        if session.starts_at <= now or session.status != Status.SCHEDULED:
            continue
        if eligible(session.facilitator_id, session):
            last[session.facilitator_id] = session.starts_at
            continue
        candidates = [user_id for user_id in members if eligible(user_id, session)]
        chosen = min(candidates, key=lambda u: (counts[u], last.get(u, never), u), default=None)
        if chosen == session.facilitator_id:
            continue
        if session.facilitator_id:
            counts[session.facilitator_id] -= 1
            session.revision += 1
        if chosen:
            counts[chosen] += 1
            last[chosen] = session.starts_at
        session.facilitator_id = chosen
        session.updated_at = now
        session.save(update_fields=["facilitator", "revision", "updated_at"])
        # A turn changed hands: any open plea for cover on it is answered.
        CoverRequest.objects.filter(session=session, accepted_at__isnull=True).delete()
    # Sessions and turns are settled: plan their reminders in this same transaction (an outbox).
    reminders.reminders_replan_circle(circle=circle, now=now)


def cover_request(
    *, user: User, session: CircleSession, note: str = "", now: datetime | None = None
) -> CoverRequest:
    """The session's facilitator asks someone else to take the turn. Safe to call twice."""
    now = now or timezone.now()
    if session.facilitator_id != user.pk:
        raise ValidationError("Only the person facilitating this session can ask for cover.")
    if session.status != Status.SCHEDULED or session.starts_at <= now:
        raise ValidationError("Cover can only be asked for a session that is still to come.")
    try:
        with transaction.atomic():
            cover, created = CoverRequest.objects.get_or_create(
                session=session,
                accepted_at__isnull=True,
                defaults={"requested_by": user, "note": note.strip()[:200], "created_at": now},
            )
            if created:
                audit(
                    actor=user,
                    action="session.cover_requested",
                    subject=session.circle.name,
                    data={"session": session.pk},
                )
    except IntegrityError:
        cover = CoverRequest.objects.get(session=session, accepted_at__isnull=True)
    return cover


def cover_accept(*, user: User, cover: CoverRequest, now: datetime | None = None) -> CircleSession:
    """Another opted-in member takes the turn. The first to accept wins; the rest are told it is taken."""
    now = now or timezone.now()
    with transaction.atomic():
        session = CircleSession.objects.select_for_update().select_related("circle").get(pk=cover.session_id)
        circle = session.circle
        membership = circle.memberships.filter(user=user, left_at__isnull=True).first()
        if membership is None or not membership.rota_opt_in:
            raise ValidationError("Opt in to the facilitation rota first, then you can cover a session.")
        if cover.requested_by_id == user.pk:
            raise ValidationError("You asked for this cover yourself.")
        if session.status != Status.SCHEDULED or session.starts_at <= now:
            raise ValidationError("This session is no longer coming up, so it needs no cover.")
        day = session.starts_at.astimezone(ZoneInfo(circle.time_zone)).date()
        if AwayPeriod.objects.filter(user=user, starts_on__lte=day, ends_on__gte=day).exists():
            raise ValidationError(
                "You are marked away that day. Change your away dates first if you can cover."
            )
        first = (
            circle.sessions.exclude(status__in=(Status.SKIPPED, Status.CANCELLED))
            .filter(starts_at__gte=membership.joined_at)
            .order_by("starts_at", "id")
            .values_list("pk", flat=True)
            .first()
        )
        if first == session.pk:
            raise ValidationError(
                "This would be your first session in the circle: take a turn once you have settled in."
            )
        claimed = CoverRequest.objects.filter(pk=cover.pk, accepted_at__isnull=True).update(
            accepted_by=user, accepted_at=now
        )
        if not claimed:
            raise ValidationError("Someone else has already said they will cover this session.")
        session.facilitator = user
        session.revision += 1
        session.updated_at = now
        session.save(update_fields=["facilitator", "revision", "updated_at"])
        reminders.reminders_replan_circle(circle=circle, now=now)
        audit(actor=user, action="session.cover_accepted", subject=circle.name, data={"session": session.pk})
    return session


# --- Calendar feeds --------------------------------------------------------------------------


def calendar_feed_regenerate(*, user: User) -> CalendarFeed:
    """Give the person a new secret feed address. Any older address stops working at once."""
    with transaction.atomic():
        feed, _ = CalendarFeed.objects.update_or_create(
            user=user, defaults={"token": secrets.token_urlsafe(32), "created_at": timezone.now()}
        )
        audit(actor=user, action="calendar_feed.regenerated")
    return feed


def calendar_feed_revoke(*, user: User) -> None:
    """Stop the person's feed address working. Safe to call twice."""
    with transaction.atomic():
        deleted, _ = CalendarFeed.objects.filter(user=user).delete()
        if deleted:
            audit(actor=user, action="calendar_feed.revoked")


# --- Session templates -----------------------------------------------------------------------


@dataclass(frozen=True)
class RoundSpec:
    kind: str
    title: str
    prompt: str = ""
    minutes_per_speaker: int = 3


def _check_template(name: str, rounds: list[RoundSpec]) -> None:
    errors = {}
    if not name.strip():
        errors["name"] = "Give the template a name."
    if not rounds:
        errors["rounds"] = (
            "A session needs at least one round. Most start with a check-in and end with a check-out."
        )
    for spec in rounds:
        if spec.kind not in TemplateRound.Kind.values:
            errors["rounds"] = f"“{spec.kind}” is not a kind of round we know."
        elif not 1 <= spec.minutes_per_speaker <= 30:
            errors["rounds"] = "Give each speaker between 1 and 30 minutes."
        elif not spec.title.strip():
            errors["rounds"] = "Give every round a title."
    if errors:
        raise ValidationError(errors)


def _write_rounds(template: SessionTemplate, rounds: list[RoundSpec]) -> None:
    """Rounds take their order from the list. Positions are rewritten in place, extras removed."""
    current = {r.position: r for r in template.rounds.all()}
    # Park existing rows out of the way so the (template, position) unique key never clashes mid-update.
    offset = len(current) + len(rounds) + 1
    for row in current.values():
        row.position += offset
        row.save(update_fields=["position"])
    keep = []
    for position, spec in enumerate(rounds, start=1):
        row = current.pop(position, None) or TemplateRound(template=template)
        row.position = position
        row.kind, row.title = spec.kind, spec.title.strip()
        row.prompt, row.minutes_per_speaker = spec.prompt.strip(), spec.minutes_per_speaker
        row.save()
        keep.append(row.pk)
    template.rounds.exclude(pk__in=keep).delete()


def template_create(
    *, actor: User, name: str, description: str = "", rounds: list[RoundSpec]
) -> SessionTemplate:
    """A facilitator's own session template, shared with the facilitators of their organisation."""
    _check_template(name, rounds)
    with transaction.atomic():
        template = SessionTemplate.objects.create(
            organisation_id=actor.organisation_id,
            name=name.strip(),
            description=description.strip(),
            created_by=actor,
        )
        _write_rounds(template, rounds)
        audit(actor=actor, action="session_template.created", subject=template.name)
    return template


def template_update(
    *, actor: User, template: SessionTemplate, name: str, description: str = "", rounds: list[RoundSpec]
) -> SessionTemplate:
    if template.organisation_id is None:
        raise ValidationError("The templates that come with Alongside can't be changed. Make a copy instead.")
    _check_template(name, rounds)
    with transaction.atomic():
        template.name, template.description = name.strip(), description.strip()
        template.save(update_fields=["name", "description"])
        _write_rounds(template, rounds)
        audit(actor=actor, action="session_template.updated", subject=template.name)
    return template


def template_copy(*, actor: User, template: SessionTemplate) -> SessionTemplate:
    """Start a new template from an existing one (usually the one that ships)."""
    rounds = [
        RoundSpec(kind=r.kind, title=r.title, prompt=r.prompt, minutes_per_speaker=r.minutes_per_speaker)
        for r in template.rounds.all()
    ]
    return template_create(
        actor=actor, name=f"{template.name} (copy)"[:120], description=template.description, rounds=rounds
    )
