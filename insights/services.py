"""Every write in insights: refreshing the rollups, and recording who looked at what.

A refresh recomputes whole (organisation, month) slices from circles' sessions, memberships and
attendance, so it is safe to run twice, in any order, and concurrently (the rows are upserted).
"""

import secrets
import zoneinfo
from datetime import date, datetime, time

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Organisation, Team, User
from accounts.services import audit
from circles.models import CircleSession
from insights.models import RollupVersion, TeamMonthRollup

HELD = (CircleSession.Status.ENDED, CircleSession.Status.LIVE)
# The nightly refresh covers the months the pages show, so a person who changed team is counted
# with their new team everywhere by the next morning.
RECENT_MONTHS = 12

# Member-sessions of one month: each session scheduled in [lo, hi) with each person who was a
# member of its circle when it started, joined to that person's attendance (several stretches in
# one session count once). Planner-cancelled dates were never really scheduled, so they are left out.
_MONTH_SQL = """
WITH s AS (
    SELECT cs.id, cs.circle_id, cs.starts_at,
           CASE WHEN cs.status IN (%s, %s) THEN 1 ELSE 0 END AS held
    FROM circles_circlesession cs
    JOIN circles_circle c ON c.id = cs.circle_id
    WHERE c.organisation_id = %s AND cs.starts_at >= %s AND cs.starts_at < %s
      AND NOT (cs.status = %s AND cs.unplanned)
),
e AS (
    SELECT s.id AS session_id, s.circle_id, s.held, m.user_id, u.team_id
    FROM s
    JOIN circles_membership m ON m.circle_id = s.circle_id
         AND m.joined_at <= s.starts_at AND (m.left_at IS NULL OR m.left_at > s.starts_at)
    JOIN accounts_user u ON u.id = m.user_id
    WHERE u.is_active AND u.team_id IS NOT NULL AND u.organisation_id = %s
),
a AS (
    SELECT DISTINCT at.session_id, at.user_id
    FROM circles_attendance at JOIN s ON s.id = at.session_id
    WHERE s.held = 1
)
SELECT e.team_id,
       COUNT(DISTINCT e.user_id),
       COUNT(DISTINCT CASE WHEN e.held = 1 THEN e.user_id END),
       COUNT(DISTINCT e.session_id),
       COUNT(DISTINCT CASE WHEN e.held = 1 THEN e.session_id END),
       COUNT(DISTINCT CASE WHEN e.held = 1 THEN e.circle_id END),
       SUM(e.held),
       COUNT(a.user_id),
       COUNT(DISTINCT a.user_id)
FROM e LEFT JOIN a ON a.session_id = e.session_id AND a.user_id = e.user_id
GROUP BY e.team_id
"""
_FIELDS = (
    "people_scheduled",
    "people_held",
    "sessions_scheduled",
    "sessions_held",
    "circles_active",
    "expected_member_sessions",
    "attended_member_sessions",
    "participants",
)


def month_start(moment: datetime, zone: zoneinfo.ZoneInfo) -> date:
    return timezone.localtime(moment, zone).date().replace(day=1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def month_bounds(month: date, zone: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """The month as an interval of instants: midnight on the 1st to midnight on the next 1st, local."""
    return (
        datetime.combine(month, time(), tzinfo=zone),
        datetime.combine(add_months(month, 1), time(), tzinfo=zone),
    )


def _month_counts(organisation: Organisation, month: date) -> dict[int, dict[str, int]]:
    lo, hi = month_bounds(month, zoneinfo.ZoneInfo(organisation.time_zone))
    adapt = connection.ops.adapt_datetimefield_value
    params = [*HELD, organisation.pk, adapt(lo), adapt(hi), CircleSession.Status.CANCELLED, organisation.pk]
    with connection.cursor() as cursor:
        cursor.execute(_MONTH_SQL, params)
        return {row[0]: dict(zip(_FIELDS, row[1:], strict=True)) for row in cursor.fetchall()}


def rollup_refresh_month(
    *, organisation: Organisation, month: date, staff: dict[int, int] | None = None
) -> int:
    """Recompute every team's row for one calendar month. Returns the number of rows written.

    `staff` ({team id: active staff}) may be passed by a caller refreshing several months at once.
    """
    if staff is None:
        staff = _staff_by_team(organisation)
    counts = _month_counts(organisation, month)
    now = timezone.now()
    rows = [
        TeamMonthRollup(
            organisation=organisation,
            team_id=team_id,
            month=month,
            staff=team_staff,
            refreshed_at=now,
            **counts.get(team_id, dict.fromkeys(_FIELDS, 0)),
        )
        for team_id, team_staff in staff.items()
    ]
    with transaction.atomic():
        TeamMonthRollup.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["team", "month"],
            update_fields=["staff", "refreshed_at", *_FIELDS],
        )
        rollups_version_bump(organisation=organisation)
    return len(rows)


def rollups_version_bump(*, organisation: Organisation) -> None:
    """Mark the organisation's insights as changed, in the caller's transaction: every process
    drops what it computed from the old rollups (see `insights.selectors`). Call it after any write
    that changes what the pages show: a refresh, a team renamed or deleted."""
    RollupVersion.objects.bulk_create(
        [RollupVersion(organisation=organisation, token=secrets.token_hex(16))],
        update_conflicts=True,
        unique_fields=["organisation"],
        update_fields=["token"],
    )


def _staff_by_team(organisation: Organisation) -> dict[int, int]:
    staff = dict.fromkeys(Team.objects.filter(organisation=organisation).values_list("pk", flat=True), 0)
    people = User.objects.filter(organisation=organisation, is_active=True, team__isnull=False)
    for team_id in people.values_list("team_id", flat=True):
        staff[team_id] += 1
    return staff


def rollup_refresh_for_session(*, session_id: int) -> int:
    """Refresh the month a session belongs to (called when it ends). Safe to run twice."""
    session = CircleSession.objects.select_related("circle__organisation").filter(pk=session_id).first()
    if session is None:
        return 0
    organisation = session.circle.organisation
    month = month_start(session.starts_at, zoneinfo.ZoneInfo(organisation.time_zone))
    return rollup_refresh_month(organisation=organisation, month=month)


def rollups_refresh_months(*, organisation: Organisation, first: date, last: date) -> int:
    staff = _staff_by_team(organisation)
    written, month = 0, first
    while month <= last:
        written += rollup_refresh_month(organisation=organisation, month=month, staff=staff)
        month = add_months(month, 1)
    return written


def rollups_refresh_recent(*, now: datetime | None = None) -> int:
    """The nightly refresh: the months the pages show, for every organisation. Safe to run twice."""
    now = now or timezone.now()
    written = 0
    for organisation in Organisation.objects.order_by("pk"):
        current = month_start(now, zoneinfo.ZoneInfo(organisation.time_zone))
        written += rollups_refresh_months(
            organisation=organisation, first=add_months(current, 1 - RECENT_MONTHS), last=current
        )
    return written


def rollups_rebuild(*, organisation: Organisation, now: datetime | None = None) -> int:
    """Every month from the organisation's first session to now (after an import or a rule change)."""
    zone = zoneinfo.ZoneInfo(organisation.time_zone)
    current = month_start(now or timezone.now(), zone)
    first_session = (
        CircleSession.objects.filter(circle__organisation=organisation).order_by("starts_at").first()
    )
    first = month_start(first_session.starts_at, zone) if first_session else current
    return rollups_refresh_months(organisation=organisation, first=min(first, current), last=current)


def insights_view_record(*, actor: User, action: str, subject: str, data: dict) -> None:
    """Audit one view or export of insights: who (the actor), which slice (subject, data), when."""
    with transaction.atomic():
        audit(actor=actor, action=action, subject=subject, data=data)
