"""Reads for circle pages, the member home and calendar feeds: scoped to the viewer, no N+1.

Every query here is bounded by the viewer's own memberships, so a page costs the same number
of queries however many circles and sessions there are.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, F, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts.models import User
from circles.models import AwayPeriod, Circle, CircleSession, CoverRequest, Membership, SessionTemplate

Status = CircleSession.Status
JOIN_OPENS_BEFORE = timedelta(minutes=10)
# The home page is where everyone lands: it shows the next few sessions and links on for more,
# which keeps it as cheap as the pages people only visit now and then.
HOME_UPCOMING_LIMIT = 8
HOME_PAST_LIMIT = 3
CIRCLE_UPCOMING_LIMIT = 20
CIRCLE_RECENT_LIMIT = 5


def join_opens_at(session: CircleSession) -> datetime:
    return session.starts_at - JOIN_OPENS_BEFORE


def can_join(session: CircleSession, now: datetime) -> bool:
    """The room opens ten minutes before the start and stays open until the planned end."""
    return (
        session.status in (Status.SCHEDULED, Status.LIVE) and join_opens_at(session) <= now < session.ends_at
    )


def _with_join_state(sessions, now: datetime) -> list[CircleSession]:
    sessions = list(sessions)
    for session in sessions:
        session.join_opens_at = join_opens_at(session)
        session.can_join = can_join(session, now)
        session.is_off = session.status in (Status.SKIPPED, Status.CANCELLED)
    return sessions


def _sessions_for(user: User) -> QuerySet[CircleSession]:
    # At most one active membership per circle (a unique constraint), so the join never repeats rows.
    return CircleSession.objects.filter(
        circle__memberships__user=user, circle__memberships__left_at__isnull=True
    ).select_related("circle", "facilitator")


# What a session row shows: loading only these keeps the home page cheap (users and circles are wide).
ROW_FIELDS = (
    "id",
    "circle_id",
    "starts_at",
    "ends_at",
    "status",
    "moved",
    "change_reason",
    "facilitator_id",
    "circle__name",
    "facilitator__display_name",
)


def _upcoming_sessions(user: User, now: datetime) -> QuerySet[CircleSession]:
    return _sessions_for(user).filter(ends_at__gt=now).order_by("starts_at", "id")


def upcoming_sessions_for_user(user: User, *, now: datetime) -> list[CircleSession]:
    return _with_join_state(_upcoming_sessions(user, now).only(*ROW_FIELDS)[:HOME_UPCOMING_LIMIT], now)


def past_sessions_for_user(user: User, *, now: datetime) -> QuerySet[CircleSession]:
    return _sessions_for(user).filter(ends_at__lte=now).order_by("-starts_at", "-id")


def home_sessions_for_user(user: User, *, now: datetime) -> tuple[list[CircleSession], list[CircleSession]]:
    """The next few sessions and the last few (latest first), fetched in one query."""
    upcoming_ids = _upcoming_sessions(user, now).values("pk")[:HOME_UPCOMING_LIMIT]
    past_ids = past_sessions_for_user(user, now=now).values("pk")[:HOME_PAST_LIMIT]
    sessions = _with_join_state(
        CircleSession.objects.filter(Q(pk__in=upcoming_ids) | Q(pk__in=past_ids))
        .select_related("circle", "facilitator")
        .only(*ROW_FIELDS)
        .order_by("starts_at", "id"),
        now,
    )
    upcoming = [session for session in sessions if session.ends_at > now]
    past = [session for session in reversed(sessions) if session.ends_at <= now]
    return upcoming, past


def circles_for_user(user: User, *, now: datetime) -> QuerySet[Circle]:
    """The viewer's circles, open ones first, each with its member count and next session."""
    active_members = (
        Membership.objects.filter(circle=OuterRef("pk"), left_at__isnull=True)
        .values("circle")
        .annotate(n=Count("pk"))
        .values("n")
    )
    next_session = (
        CircleSession.objects.filter(circle=OuterRef("pk"), starts_at__gt=now, status=Status.SCHEDULED)
        .order_by("starts_at")
        .values("starts_at")[:1]
    )
    viewer_role = Membership.objects.filter(circle=OuterRef("pk"), user=user, left_at__isnull=True).values(
        "role"
    )[:1]
    return (
        Circle.objects.filter(memberships__user=user, memberships__left_at__isnull=True)
        .annotate(
            member_count=Coalesce(Subquery(active_members), 0),
            next_starts_at=Subquery(next_session),
            viewer_role=Subquery(viewer_role),
        )
        .order_by(F("archived_at").asc(nulls_first=True), "name", "id")
    )


@dataclass
class RotaRow:
    membership: Membership
    turns: int = 0
    last_turn: datetime | None = None
    next_turn: datetime | None = None


@dataclass
class CirclePage:
    members: list[Membership]
    upcoming: list[CircleSession]
    recent: list[CircleSession]
    rota: list[RotaRow]
    open_covers: list[CoverRequest]


def circle_page(circle: Circle, *, viewer: User, now: datetime) -> CirclePage:
    members = list(
        circle.memberships.filter(left_at__isnull=True).select_related("user").order_by("user__display_name")
    )
    sessions = circle.sessions.select_related("facilitator")
    upcoming = _with_join_state(
        sessions.filter(ends_at__gt=now).order_by("starts_at")[:CIRCLE_UPCOMING_LIMIT], now
    )
    recent = _with_join_state(
        sessions.filter(ends_at__lte=now).order_by("-starts_at")[:CIRCLE_RECENT_LIMIT], now
    )
    turns = {
        row["facilitator_id"]: row
        for row in circle.sessions.exclude(status__in=(Status.SKIPPED, Status.CANCELLED))
        .filter(facilitator__isnull=False)
        .values("facilitator_id")
        .annotate(
            turns=Count("pk", filter=Q(starts_at__lte=now)),
            last_turn=Max("starts_at", filter=Q(starts_at__lte=now)),
        )
    }
    next_turns = {}
    for session in upcoming:
        if session.facilitator_id and session.status == Status.SCHEDULED:
            next_turns.setdefault(session.facilitator_id, session.starts_at)
    rota = [
        RotaRow(
            membership=m,
            turns=turns.get(m.user_id, {}).get("turns", 0),
            last_turn=turns.get(m.user_id, {}).get("last_turn"),
            next_turn=next_turns.get(m.user_id),
        )
        for m in members
        if m.rota_opt_in
    ]
    open_covers = list(
        CoverRequest.objects.filter(
            session__circle=circle,
            accepted_at__isnull=True,
            session__starts_at__gt=now,
            session__status=Status.SCHEDULED,
        ).select_related("session", "requested_by")
    )
    return CirclePage(
        members=members,
        upcoming=upcoming,
        recent=recent,
        rota=rota,
        open_covers=open_covers,
    )


def open_cover_for_session(session: CircleSession) -> CoverRequest | None:
    return session.cover_requests.filter(accepted_at__isnull=True).select_related("requested_by").first()


def feed_sessions_for_user(user: User) -> QuerySet[CircleSession]:
    """Every session of every circle the person is in, for their calendar."""
    return _sessions_for(user).order_by("starts_at", "id")


def away_periods_for_user(user: User, *, today: date) -> QuerySet[AwayPeriod]:
    return AwayPeriod.objects.filter(user=user, ends_on__gte=today)


def templates_for_user(user: User) -> QuerySet[SessionTemplate]:
    """The templates that ship and the viewer's organisation's own, with their rounds."""
    return (
        SessionTemplate.objects.filter(Q(organisation=None) | Q(organisation_id=user.organisation_id))
        .annotate(round_count=Count("rounds"))
        .order_by(Coalesce("organisation_id", 0), "name", "id")
    )


def people_who_can_join(circle: Circle) -> QuerySet[User]:
    """People in the circle's organisation who take part in circles and are not in this one."""
    return (
        User.objects.filter(organisation_id=circle.organisation_id, is_active=True, is_member=True)
        .exclude(memberships__circle=circle, memberships__left_at__isnull=True)
        .order_by("display_name", "id")
    )
