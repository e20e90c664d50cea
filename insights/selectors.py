"""Reads for the insights pages. They read rollups only, and hand back only `privacy.Row`s.

Raw counts leave the database here and go straight through `insights.privacy`; nothing returned
from this module carries a count that the privacy rules have not passed.

What the privacy rules make of the rollups is kept in this process (`RECENT`) under the rollups'
version (`RollupVersion`), read on every request: a refresh or a team rename anywhere changes the
version, so nothing is served from rollups that have since changed. A month's table is kept per
set of visible groups, so a look only ever reuses what the same scope would have computed.
"""

import threading
import zoneinfo
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.paginator import Page, Paginator
from django.utils import timezone

from accounts.models import Organisation, User
from insights import privacy
from insights.models import RollupVersion, TeamMonthRollup
from insights.services import RECENT_MONTHS, add_months, month_start

GROUPS_PER_PAGE = 20
TEAMS_LISTED_UP_TO = 50


class RecentResults:
    """The latest results by key, for this process, least recently used dropped first."""

    def __init__(self, size: int):
        self._size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable | None, compute: Callable[[], Any]) -> Any:
        """The result kept under `key`, else `compute()` kept under it. A key of None keeps nothing."""
        if key is None:
            return compute()
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


# Groups, month tables and their HTML for the scopes looked at lately. 500 groups and one month's
# table of them take under a megabyte, so this holds tens of megabytes per process at most.
RECENT = RecentResults(64)


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
    # The rollups' version when the scope was read; None before their first refresh.
    version: str | None = None

    @property
    def cache_key(self) -> tuple | None:
        """What every result computed for this scope is kept under (None: keep nothing)."""
        if self.version is None:
            return None
        return (
            self.organisation.pk,
            self.k,
            self.months[0],
            self.version,
            tuple(g.key for g in self.visible),
        )

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


def _groups(organisation: Organisation, k: int, current: date) -> tuple[privacy.Group, ...]:
    # Groups follow the latest refresh's headcounts, so the groups and their figures always
    # describe the same people.
    teams = {
        team_id: (name, staff)
        for team_id, name, staff in TeamMonthRollup.objects.filter(
            organisation=organisation, month=current
        ).values_list("team_id", "team__name", "staff")
    }
    return tuple(privacy.partition(teams, k))


def scope_for_user(user: User) -> Scope:
    """The caller has checked that `user` belongs to an organisation."""
    organisation = user.organisation
    k = privacy.threshold(organisation)
    months = months_shown(organisation)
    version = RollupVersion.objects.filter(organisation=organisation).values_list("token", flat=True).first()
    groups = RECENT.get(
        ("groups", organisation.pk, k, months[0], version) if version else None,
        lambda: _groups(organisation, k, months[0]),
    )
    if user.is_org_admin:
        return Scope(organisation, k, months, groups, groups, is_viewer=True, version=version)
    managed = set(user.managed_teams.filter(organisation_id=organisation.pk).values_list("pk", flat=True))
    visible = tuple(group for group in groups if group.team_ids & managed)
    return Scope(organisation, k, months, groups, visible, is_viewer=bool(managed), version=version)


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


def _month_table(scope: Scope, month: date) -> tuple[tuple[privacy.Row, ...], privacy.Row | None]:
    """Every visible group's row for `month`, and their total: computed once per scope and version."""

    def compute():
        parts = _month_parts(scope, month)
        rows = tuple(privacy.group_row(group, month, part, scope.k) for group, part in parts)
        return rows, privacy.month_total(month, [part for _, part in parts], scope.k)

    key = scope.cache_key
    return RECENT.get(("month", *key, month) if key else None, compute)


def month_export(scope: Scope, month: date) -> list[privacy.Row]:
    """Every group's row for `month` and the total: the same rows as all the pages together."""
    rows, total = _month_table(scope, month)
    return [*rows, total] if total else list(rows)


def month_summary(scope: Scope, month: date, page_number) -> tuple[Page, privacy.Row | None]:
    """A page of rows, one per group the person can see for `month`, and the total of all of them."""
    rows, total = _month_table(scope, month)
    return Paginator(rows, GROUPS_PER_PAGE).get_page(page_number), total


def group_trend(scope: Scope, group: privacy.Group) -> list[privacy.Row]:
    """The group's row for each of the months shown, newest first."""
    counts = _counts_by_team(scope, group.team_ids, scope.months)
    return [
        privacy.group_row(group, month, _group_counts(group, month, counts), scope.k)
        for month in scope.months
    ]
