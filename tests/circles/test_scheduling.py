"""Cadence expansion: local wall-clock time holds across daylight-saving changes."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from circles import scheduling
from circles.scheduling import AMBIGUOUS, NONEXISTENT, Cadence


def weekly(**fields) -> Cadence:
    fields.setdefault("frequency", scheduling.WEEKLY)
    fields.setdefault("start_date", date(2025, 3, 18))
    fields.setdefault("start_time", time(19, 0))
    fields.setdefault("duration_minutes", 60)
    fields.setdefault("time_zone", "Europe/London")
    return Cadence(**fields)


def test_weekly_london_circle_keeps_seven_pm_across_the_spring_change():
    found = scheduling.occurrences(weekly(), start=date(2025, 3, 18), end=date(2025, 4, 1))
    assert [o.date for o in found] == [date(2025, 3, 18), date(2025, 3, 25), date(2025, 4, 1)]
    # GMT before 30 March, BST after: same local time, UTC instant an hour earlier.
    assert [o.starts_at for o in found] == [
        datetime(2025, 3, 18, 19, tzinfo=UTC),
        datetime(2025, 3, 25, 19, tzinfo=UTC),
        datetime(2025, 4, 1, 18, tzinfo=UTC),
    ]
    london = ZoneInfo("Europe/London")
    assert {o.starts_at.astimezone(london).time() for o in found} == {time(19, 0)}


def test_weekly_new_york_circle_keeps_local_time_across_the_autumn_change():
    cadence = weekly(start_date=date(2025, 10, 28), start_time=time(9, 30), time_zone="America/New_York")
    found = scheduling.occurrences(cadence, start=date(2025, 10, 28), end=date(2025, 11, 4))
    assert [o.starts_at for o in found] == [
        datetime(2025, 10, 28, 13, 30, tzinfo=UTC),  # EDT, UTC-4
        datetime(2025, 11, 4, 14, 30, tzinfo=UTC),  # EST, UTC-5 after 2 November
    ]
    assert all(o.problem is None for o in found)


def test_session_length_is_real_minutes_even_on_a_change_day():
    cadence = weekly(start_date=date(2025, 10, 26), start_time=time(0, 30), duration_minutes=120)
    (found,) = scheduling.occurrences(cadence, start=date(2025, 10, 26), end=date(2025, 10, 26))
    assert (found.ends_at - found.starts_at).total_seconds() == 2 * 3600


def test_time_skipped_by_the_clocks_going_forward_is_flagged_nonexistent():
    london = ZoneInfo("Europe/London")
    assert scheduling.wall_clock_problem(date(2025, 3, 30), time(1, 30), london) == NONEXISTENT
    new_york = ZoneInfo("America/New_York")
    assert scheduling.wall_clock_problem(date(2025, 3, 9), time(2, 15), new_york) == NONEXISTENT


def test_time_repeated_by_the_clocks_going_back_is_flagged_ambiguous():
    assert (
        scheduling.wall_clock_problem(date(2025, 10, 26), time(1, 30), ZoneInfo("Europe/London")) == AMBIGUOUS
    )
    new_york = ZoneInfo("America/New_York")
    assert scheduling.wall_clock_problem(date(2025, 11, 2), time(1, 0), new_york) == AMBIGUOUS
    assert scheduling.wall_clock_problem(date(2025, 11, 2), time(2, 0), new_york) is None


def test_ambiguous_time_takes_the_first_of_the_two_instants():
    start = scheduling.local_start(date(2025, 10, 26), time(1, 30), ZoneInfo("Europe/London"))
    assert start == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # still BST


def test_problems_within_a_year_finds_the_spring_gap_for_a_sunday_one_thirty_circle():
    cadence = weekly(start_date=date(2025, 1, 5), start_time=time(1, 30))
    problems = scheduling.problems_within(cadence)
    assert [(o.date, o.problem) for o in problems] == [
        (date(2025, 3, 30), NONEXISTENT),
        (date(2025, 10, 26), AMBIGUOUS),
    ]


def test_every_two_weeks_steps_a_fortnight_from_the_start():
    cadence = weekly(frequency=scheduling.EVERY_N_WEEKS, interval_weeks=2, start_date=date(2025, 1, 7))
    days = list(scheduling.occurrence_dates(cadence, until=date(2025, 2, 28)))
    assert days == [date(2025, 1, 7), date(2025, 1, 21), date(2025, 2, 4), date(2025, 2, 18)]


def test_monthly_on_the_second_tuesday():
    cadence = weekly(frequency=scheduling.MONTHLY_NTH_WEEKDAY, week_of_month=2, start_date=date(2025, 1, 14))
    days = list(scheduling.occurrence_dates(cadence, until=date(2025, 4, 30)))
    assert days == [date(2025, 1, 14), date(2025, 2, 11), date(2025, 3, 11), date(2025, 4, 8)]


def test_monthly_on_the_last_friday_skips_a_start_after_that_month_s_last_friday():
    cadence = weekly(frequency=scheduling.MONTHLY_NTH_WEEKDAY, week_of_month=-1, start_date=date(2025, 1, 31))
    days = list(scheduling.occurrence_dates(cadence, until=date(2025, 3, 31)))
    assert days == [date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 28)]


def test_end_date_and_count_stop_the_series():
    assert list(scheduling.occurrence_dates(weekly(occurrence_count=2), until=date(2026, 1, 1))) == [
        date(2025, 3, 18),
        date(2025, 3, 25),
    ]
    assert list(scheduling.occurrence_dates(weekly(end_date=date(2025, 3, 31)), until=date(2026, 1, 1))) == [
        date(2025, 3, 18),
        date(2025, 3, 25),
    ]


def test_horizon_is_twelve_weeks_from_today_in_the_circle_zone():
    # 23:30 UTC on 31 December is already 1 January in Auckland.
    today, last = scheduling.horizon(datetime(2024, 12, 31, 23, 30, tzinfo=UTC), ZoneInfo("Pacific/Auckland"))
    assert today == date(2025, 1, 1)
    assert (last - today).days == 84
