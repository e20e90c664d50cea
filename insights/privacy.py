"""Every privacy rule of manager insights, in one place. docs/privacy.md describes them in words.

Raw counts (`Counts`, read from the rollups) go in; only `Row`s of display text come out, and the
pages, the CSV export and the charts are built from those rows alone. The rules:

1. Groups are fixed for the whole organisation: a team with at least k staff is a group of its
   own; every smaller team is pooled into one "other teams" group, which is dropped if it still has
   fewer than k staff. Because the pool is the same for every viewer, no two people can see two
   pools that differ by one small team, and no viewer sees two nested groups that differ by fewer
   than k people (groups are disjoint, each has k or more).
2. Every figure names the groups of people it rests on (`_basis`). If any has fewer than k people
   the figure is shown as "fewer than k" (or "hidden" when the small group is the complement: the
   staff who did not take part). A figure that would say the same of every single person in its
   group (an attendance of 100%: everyone came to every session) is "hidden" too.
3. Complementary suppression: a total is shown only if every figure it adds up is shown, so no
   total minus the shown parts gives away a hidden figure.
4. Session and circle counts are not added across teams (circles mix teams, so a sum would count
   a session twice): combined rows say so instead of showing a misleading number.

There are no names of people, no circle names, no per-session figures: `Counts` has no such
fields, so nothing here can print them.
"""

from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from accounts.models import MIN_ANONYMITY_THRESHOLD, Organisation

SHOWN, FEWER, HIDDEN, NOT_ADDED = "shown", "fewer", "hidden", "not-added"
OTHER_KEY = "other"
OTHER_LABEL = "Smaller teams, combined"
TOTAL_LABEL = "All your teams together"


def threshold(organisation: Organisation) -> int:
    """k for this organisation. The database refuses less than 3; this refuses it again."""
    return max(organisation.anonymity_threshold, MIN_ANONYMITY_THRESHOLD)


class Counts(NamedTuple):
    """Raw counts for one team (or several, added up) in one month. Never shown as they are.

    A named tuple rather than a dataclass: the overview builds one per team, and there are many.
    """

    staff: int = 0
    people_scheduled: int = 0
    people_held: int = 0
    sessions_scheduled: int = 0
    sessions_held: int = 0
    circles_active: int = 0
    expected_member_sessions: int = 0
    attended_member_sessions: int = 0
    participants: int = 0


def added_up(parts) -> Counts:
    """The counts of several teams together (people are in one team each, so they add up)."""
    return Counts(*map(sum, zip(*parts, strict=True))) if parts else Counts()


COUNT_FIELDS = Counts._fields


@dataclass(frozen=True)
class Column:
    key: str
    heading: str
    # Whether adding the figure up across teams means anything (people are in one team each;
    # sessions and circles are shared between teams).
    adds_up: bool
    # Whether the figure is a percentage, for the charts.
    percent: bool = False


COLUMNS = (
    Column("staff", "Staff", adds_up=True),
    Column("sessions_scheduled", "Sessions scheduled", adds_up=False),
    Column("sessions_held", "Sessions held", adds_up=False),
    Column("attendance_rate", "Attendance at sessions held", adds_up=True, percent=True),
    Column("participants", "People taking part", adds_up=True),
    Column("share_taking_part", "Share of staff taking part", adds_up=True, percent=True),
    Column("sessions_per_participant", "Sessions per person taking part", adds_up=True),
    Column("circles_active", "Circles meeting", adds_up=False),
)
COLUMN_KEYS = tuple(column.key for column in COLUMNS)


class Cell(NamedTuple):
    text: str
    state: str
    # 0-100 for percentages that are shown, for drawing a bar; None otherwise.
    percent: float | None = None

    @property
    def shown(self) -> bool:
        return self.state == SHOWN


@dataclass(frozen=True)
class Group:
    """A fixed population: one team of k or more staff, or the pool of smaller teams."""

    key: str
    label: str
    team_ids: frozenset[int]

    @property
    def is_pool(self) -> bool:
        return self.key == OTHER_KEY


@dataclass(frozen=True)
class Row:
    label: str
    group_key: str
    month: date
    cells: tuple[Cell, ...]
    is_total: bool = False

    def cell(self, key: str) -> Cell:
        return self.cells[COLUMN_KEYS.index(key)]


def group_key_for_team(team_id: int) -> str:
    return f"team-{team_id}"


def partition(teams: dict[int, tuple[str, int]], k: int) -> list[Group]:
    """The organisation's groups from {team id: (team name, staff)}, big teams first by name.

    Teams with fewer than k staff are never shown alone; pooled, they are shown only if the pool
    reaches k. The result depends on the organisation alone, never on who is looking.
    """
    big = sorted(
        (
            Group(group_key_for_team(pk), name, frozenset([pk]))
            for pk, (name, staff) in teams.items()
            if staff >= k
        ),
        key=lambda group: (group.label.lower(), group.key),
    )
    small = frozenset(pk for pk, (_, staff) in teams.items() if staff < k)
    if small and sum(teams[pk][1] for pk in small) >= k:
        big.append(Group(OTHER_KEY, OTHER_LABEL, small))
    return big


# The groups of people each figure rests on, by name (see `_sizes`).
_RESTS_ON = {
    "staff": ("staff",),
    "sessions_scheduled": ("staff", "people_scheduled"),
    "sessions_held": ("staff", "people_held"),
    "circles_active": ("staff", "people_held"),
    "attendance_rate": ("staff", "people_held", "participants"),
    "participants": ("staff", "participants", "did_not_take_part"),
    "share_taking_part": ("staff", "participants", "did_not_take_part"),
    "sessions_per_participant": ("staff", "participants", "did_not_take_part"),
}
# Groups that are the rest of the team rather than the people a figure counts.
_COMPLEMENTS = {"did_not_take_part"}


def _sizes(counts: Counts) -> dict[str, int]:
    return {
        "staff": counts.staff,
        "people_scheduled": counts.people_scheduled,
        "people_held": counts.people_held,
        "participants": counts.participants,
        "did_not_take_part": counts.staff - counts.participants,
    }


def _says_it_of_everyone(counts: Counts, key: str) -> bool:
    return key == "attendance_rate" and counts.attended_member_sessions >= counts.expected_member_sessions


def _value(counts: Counts, key: str) -> tuple[str, float | None]:
    if key == "attendance_rate":
        percent = 100 * counts.attended_member_sessions / counts.expected_member_sessions
        return f"{percent:.0f}%", percent
    if key == "share_taking_part":
        percent = 100 * counts.participants / counts.staff
        return f"{percent:.0f}%", percent
    if key == "sessions_per_participant":
        return f"{counts.attended_member_sessions / counts.participants:.1f}", None
    return str(getattr(counts, key)), None


def _cells(counts: Counts, k: int, *, combined: bool) -> tuple[Cell, ...]:
    cells = []
    sizes = _sizes(counts)
    for column in COLUMNS:
        if combined and not column.adds_up:
            cells.append(Cell("not added up", NOT_ADDED))
            continue
        small = [name in _COMPLEMENTS for name in _RESTS_ON[column.key] if sizes[name] < k]
        if not small and _says_it_of_everyone(counts, column.key):
            cells.append(Cell("hidden", HIDDEN))
        elif not small:
            text, percent = _value(counts, column.key)
            cells.append(Cell(text, SHOWN, percent))
        elif all(small):
            cells.append(Cell("hidden", HIDDEN))
        else:
            cells.append(Cell(f"fewer than {k}", FEWER))
    return tuple(cells)


def group_row(group: Group, month: date, counts: Counts, k: int) -> Row:
    return Row(group.label, group.key, month, _cells(counts, k, combined=group.is_pool))


def month_total(month: date, parts: list[Counts], k: int) -> Row | None:
    """The total of a month's groups, when there is more than one group.

    A total figure is shown only when every figure it adds up is shown (complementary
    suppression): otherwise the total minus the others would give the hidden one away. A part's
    figure is shown when every group it rests on has k people or more, so "every part shown" is
    "the smallest of each such group, across the parts, has k or more" (and no part is 100%).
    """
    if len(parts) < 2:
        return None
    sizes = [_sizes(counts) for counts in parts]
    smallest = {name: min(part[name] for part in sizes) for name in sizes[0]}
    everyone = any(_says_it_of_everyone(counts, "attendance_rate") for counts in parts)
    cells = []
    for column, cell in zip(COLUMNS, _cells(added_up(parts), k, combined=True), strict=True):
        parts_shown = all(smallest[name] >= k for name in _RESTS_ON[column.key]) and not (
            column.key == "attendance_rate" and everyone
        )
        cells.append(cell if not cell.shown or parts_shown else Cell("hidden", HIDDEN))
    return Row(TOTAL_LABEL, "total", month, tuple(cells), is_total=True)
