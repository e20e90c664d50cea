"""Expanding a circle's cadence into dated occurrences: pure functions, no database.

A cadence is a local wall-clock rule ("every other Tuesday at 19:00 in Europe/London"). Dates
are generated in the circle's own calendar, then each is joined to the start time in the
circle's zone, so the local time holds across daylight-saving changes while the UTC instant
moves. Twice a year a local time can fail to exist (the clocks go forward past it) or exist
twice (the clocks go back over it); `wall_clock_problem` names which.
"""

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKLY = "weekly"
EVERY_N_WEEKS = "every_n_weeks"
MONTHLY_NTH_WEEKDAY = "monthly_nth_weekday"

HORIZON_WEEKS = 12
NONEXISTENT = "nonexistent"
AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class Cadence:
    frequency: str
    start_date: date
    start_time: time
    duration_minutes: int
    time_zone: str
    interval_weeks: int = 1
    week_of_month: int | None = None
    end_date: date | None = None
    occurrence_count: int | None = None

    @classmethod
    def of(cls, circle) -> "Cadence":
        """The cadence of a Circle (or anything with the same attributes)."""
        return cls(
            frequency=circle.frequency,
            start_date=circle.start_date,
            start_time=circle.start_time,
            duration_minutes=circle.duration_minutes,
            time_zone=circle.time_zone,
            interval_weeks=circle.interval_weeks,
            week_of_month=circle.week_of_month,
            end_date=circle.end_date,
            occurrence_count=circle.occurrence_count,
        )


@dataclass(frozen=True)
class Occurrence:
    date: date
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC
    problem: str | None  # None, NONEXISTENT or AMBIGUOUS


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date | None:
    """The nth (1-4) or last (-1) `weekday` (Monday=0) of the month."""
    days = [d for d in calendar.Calendar().itermonthdates(year, month) if d.month == month]
    matching = [d for d in days if d.weekday() == weekday]
    if n == -1:
        return matching[-1]
    return matching[n - 1] if 1 <= n <= len(matching) else None


def _candidate_dates(cadence: Cadence) -> Iterator[date]:
    """Every date the rule produces from its start date, unbounded (callers stop it)."""
    if cadence.frequency in (WEEKLY, EVERY_N_WEEKS):
        step = timedelta(weeks=1 if cadence.frequency == WEEKLY else cadence.interval_weeks)
        current = cadence.start_date
        while True:
            yield current
            current += step
    elif cadence.frequency == MONTHLY_NTH_WEEKDAY:
        if cadence.week_of_month is None:
            raise ValueError("A monthly cadence needs a week of the month.")
        weekday = cadence.start_date.weekday()
        year, month = cadence.start_date.year, cadence.start_date.month
        while True:
            day = nth_weekday(year, month, weekday, cadence.week_of_month)
            if day is not None and day >= cadence.start_date:
                yield day
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    else:
        raise ValueError(f"Unknown frequency {cadence.frequency!r}.")


def occurrence_dates(cadence: Cadence, *, until: date) -> Iterator[date]:
    """Dates of the cadence from its start up to `until` (inclusive), honouring end date and count."""
    last = min(until, cadence.end_date) if cadence.end_date else until
    for index, day in enumerate(_candidate_dates(cadence)):
        if day > last or (cadence.occurrence_count is not None and index >= cadence.occurrence_count):
            return
        yield day


def wall_clock_problem(day: date, at: time, zone: ZoneInfo) -> str | None:
    """NONEXISTENT if `at` is skipped on `day` in `zone`, AMBIGUOUS if it happens twice, else None."""
    first = datetime.combine(day, at, tzinfo=zone)
    second = first.replace(fold=1)
    if first.utcoffset() == second.utcoffset():
        return None
    round_trip = first.astimezone(UTC).astimezone(zone)
    if round_trip.replace(tzinfo=None) != first.replace(tzinfo=None):
        return NONEXISTENT
    return AMBIGUOUS


def local_start(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of `at` on `day` in `zone`. An ambiguous time takes its first (earlier) instant;
    a nonexistent one lands where the clocks jumped to, which callers must not use unflagged."""
    return datetime.combine(day, at, tzinfo=zone).replace(fold=0).astimezone(UTC)


def occurrences(cadence: Cadence, *, start: date, end: date) -> list[Occurrence]:
    """Occurrences whose local date falls in [start, end]."""
    zone = ZoneInfo(cadence.time_zone)
    length = timedelta(minutes=cadence.duration_minutes)
    result = []
    for day in occurrence_dates(cadence, until=end):
        if day < start:
            continue
        starts_at = local_start(day, cadence.start_time, zone)
        result.append(
            Occurrence(
                date=day,
                starts_at=starts_at,
                ends_at=starts_at + length,
                problem=wall_clock_problem(day, cadence.start_time, zone),
            )
        )
    return result


def horizon(now: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """The rolling planning window: today in the circle's zone and the next HORIZON_WEEKS weeks."""
    today = now.astimezone(zone).date()
    return today, today + timedelta(weeks=HORIZON_WEEKS)


def problems_within(cadence: Cadence, *, days: int = 370) -> list[Occurrence]:
    """Occurrences in the first ~year of the cadence whose local time is skipped or doubled."""
    start = cadence.start_date
    return [o for o in occurrences(cadence, start=start, end=start + timedelta(days=days)) if o.problem]
