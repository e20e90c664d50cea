"""The date filters for session lists and perspectives write exactly what Django's `date` filter would."""

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.template import engines
from django.utils import timezone

from circles.templatetags.session_times import clock_time, date_and_time, day_and_time, iso_utc

ZONES = ["Europe/London", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "UTC"]
# Around both 2025 clock changes in London and New York, a day start, a year end, odd minutes.
MOMENTS = [
    datetime(2025, 3, 9, 6, 59, tzinfo=UTC),
    datetime(2025, 3, 30, 0, 30, tzinfo=UTC),
    datetime(2025, 3, 30, 1, 30, tzinfo=UTC),
    datetime(2025, 10, 26, 0, 59, 59, 999999, tzinfo=UTC),
    datetime(2025, 11, 2, 5, 30, tzinfo=UTC),
    datetime(2025, 12, 31, 23, 59, tzinfo=UTC),
    *(datetime(2026, 1, 1, 7, 5, tzinfo=UTC) + timedelta(days=d, minutes=37 * d) for d in range(14)),
]


@pytest.mark.parametrize("zone", ZONES)
def test_the_filters_match_djangos_date_filter(zone):
    django_date = engines["django"].from_string(
        "{% load tz %}{% timezone zone %}{{ v|utc|date:'c' }}|{{ v|date:'D j M, H:i' }}|{{ v|date:'H:i' }}"
        "|{{ v|date:'j M Y, H:i' }}"
        "{% endtimezone %}"
    )
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        for moment in MOMENTS:
            ours = f"{iso_utc(moment)}|{day_and_time(moment)}|{clock_time(moment)}|{date_and_time(moment)}"
            assert ours == django_date.render({"v": moment, "zone": zone}), moment


def test_nothing_is_written_for_no_value():
    assert iso_utc(None) == day_and_time(None) == clock_time(None) == date_and_time(None) == ""
