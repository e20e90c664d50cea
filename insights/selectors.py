"""Reads for the insights pages. They read rollups only, and hand back only `privacy.Row`s.

Raw counts leave the database here and go straight through `insights.privacy`; nothing returned
from this module carries a count that the privacy rules have not passed.
"""

import zoneinfo
from dataclasses import dataclass
from datetime import date

from django.core.paginator import Page, Paginator
from django.utils import timezone

from accounts.models import Organisation, User
from insights import privacy
from insights.models import TeamMonthRollup
from insights.services import RECENT_MONTHS, add_months, month_start

GROUPS_PER_PAGE = 20
TEAMS_LISTED_UP_TO = 50


@dataclass(frozen=True)
class Scope:
    """What one person may look at: the organisation's fixed groups, and those visible to them."""

    organisation: Organisation
    k: int
    months: tuple[date, ...]  # newest first; the current month is months[0]
    groups: tuple[privacy.Group, ...]
    visible: tuple[privacy.Group, ...]
    # Admin of the organisation, or manager of at least one of its teams.
    is_viewer: bool

    @property
    def default_month(self) -> date:
        """The latest complete month: the current one is still filling up."""
        return self.months[1]

    def group(self, key: str) -> privacy.Group | None:
        return next((group for group in self.groups if group.key == key), None)

    def group_for_team(self, team_id: int | None) -> privacy.Group | None:
        return next((group for group in self.groups if team_id in group.team_ids), None)


def months_shown(organisation: Organisation) -> tuple[date, ...]:
    current = month_start(timezone.now(), zoneinfo.ZoneInfo(organisation.time_zone))
    return tuple(add_months(current, -offset) for offset in range(RECENT_MONTHS))


def scope_for_user(user: User) -> Scope:
    """The caller has checked that `user` belongs to an organisation."""
    organisation = user.organisation
    k = privacy.threshold(organisation)
    months = months_shown(organisation)
    # Groups follow the latest refresh's headcounts, so the groups and their figures always
    # describe the same people.
    teams = {
        team_id: (name, staff)
        for team_id, name, staff in TeamMonthRollup.objects.filter(
            organisation=organisation, month=months[0]
        ).values_list("team_id", "team__name", "staff")
    }
    groups = tuple(privacy.partition(teams, k))
    if user.is_org_admin:
        return Scope(organisation, k, months, groups, groups, is_viewer=True)
    managed = set(user.managed_teams.filter(organisation_id=organisation.pk).values_list("pk", flat=True))
    visible = tuple(group for group in groups if group.team_ids & managed)
    return Scope(organisation, k, months, groups, visible, is_viewer=bool(managed))


def _counts_by_team(scope: Scope, team_ids, months) -> dict[tuple[int, date], privacy.Counts]:
    rows = TeamMonthRollup.objects.filter(organisation=scope.organisation, month__in=months)
    # Someone who sees every group needs every team: listing 500 team ids would only slow the query.
    if scope.visible != scope.groups or len(team_ids) < TEAMS_LISTED_UP_TO:
        rows = rows.filter(team_id__in=team_ids)
    return {
        (row[0], row[1]): privacy.Counts(*row[2:])
        for row in rows.values_list("team_id", "month", *privacy.COUNT_FIELDS)
    }


def _group_counts(group: privacy.Group, month: date, counts) -> privacy.Counts:
    if not group.is_pool:
        return counts.get((next(iter(group.team_ids)), month), privacy.Counts())
    return privacy.added_up(
        [counts[team_id, month] for team_id in group.team_ids if (team_id, month) in counts]
    )


def _month_parts(scope: Scope, month: date) -> list[tuple[privacy.Group, privacy.Counts]]:
    team_ids = {team_id for group in scope.visible for team_id in group.team_ids}
    counts = _counts_by_team(scope, team_ids, [month])
    return [(group, _group_counts(group, month, counts)) for group in scope.visible]


def month_export(scope: Scope, month: date) -> list[privacy.Row]:
    """Every group's row for `month` and the total: the same rows as all the pages together."""
    parts = _month_parts(scope, month)
    total = privacy.month_total(month, [part for _, part in parts], scope.k)
    rows = [privacy.group_row(group, month, part, scope.k) for group, part in parts]
    return [*rows, total] if total else rows


def month_summary(scope: Scope, month: date, page_number) -> tuple[Page, privacy.Row | None]:
    """A page of rows, one per group the person can see for `month`, and the total of all of them.

    Only the page's groups are turned into rows; the total still covers every group.
    """
    parts = _month_parts(scope, month)
    page = Paginator(parts, GROUPS_PER_PAGE).get_page(page_number)
    page.object_list = [privacy.group_row(group, month, part, scope.k) for group, part in page.object_list]
    return page, privacy.month_total(month, [part for _, part in parts], scope.k)


def group_trend(scope: Scope, group: privacy.Group) -> list[privacy.Row]:
    """The group's row for each of the months shown, newest first."""
    counts = _counts_by_team(scope, group.team_ids, scope.months)
    return [
        privacy.group_row(group, month, _group_counts(group, month, counts), scope.k)
        for month in scope.months
    ]
