"""usage.windows is pure: these tests need no database."""

from datetime import UTC, date, datetime, timedelta

import pytest

from core.calendar import local_day_range
from usage.windows import dense_days, last_days, panel_window, period_window

NOW = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("key", "start"),
    [
        ("24h", datetime(2026, 11, 20, 15, 30, tzinfo=UTC)),
        ("7d", datetime(2026, 11, 14, 15, 30, tzinfo=UTC)),
        ("30d", datetime(2026, 10, 22, 15, 30, tzinfo=UTC)),
        ("all", None),
    ],
)
def test_panel_windows_end_now_and_reach_back(key, start):
    window = panel_window(key, now=NOW)
    assert (window.key, window.start, window.end) == (key, start, NOW)


@pytest.mark.parametrize("key", [None, "", "90d", "<script>"])
def test_unknown_panel_window_is_the_30_day_default(key):
    assert panel_window(key, now=NOW).key == "30d"


def test_windows_are_half_open():
    window = panel_window("24h", now=NOW)
    assert window.contains(NOW - timedelta(hours=24))
    assert not window.contains(NOW)
    assert not window.contains(NOW - timedelta(hours=24, microseconds=1))


def test_daily_is_the_last_24_hours():
    window = period_window("daily", now=NOW)
    assert (window.start, window.end) == (NOW - timedelta(hours=24), NOW)


def test_monthly_is_the_last_calendar_month_in_utc():
    window = period_window("monthly", now=NOW)
    assert window.start == datetime(2026, 10, 1, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 1, tzinfo=UTC)


def test_monthly_in_january_is_last_december():
    window = period_window("monthly", now=datetime(2027, 1, 5, tzinfo=UTC))
    assert window.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert window.end == datetime(2027, 1, 1, tzinfo=UTC)


def test_yearly_is_the_last_calendar_year_in_the_organizations_zone():
    window = period_window("yearly", now=NOW, tz="America/New_York")
    # Midnight in New York is 05:00 UTC in winter.
    assert window.start.astimezone(UTC) == datetime(2025, 1, 1, 5, tzinfo=UTC)
    assert window.end.astimezone(UTC) == datetime(2026, 1, 1, 5, tzinfo=UTC)


def test_monthly_follows_the_zone_near_midnight():
    # 03:00 UTC on 1 December is still 30 November in Los Angeles.
    window = period_window(
        "monthly", now=datetime(2026, 12, 1, 3, tzinfo=UTC), tz="America/Los_Angeles"
    )
    assert window.start.astimezone(UTC) == datetime(2026, 10, 1, 7, tzinfo=UTC)
    assert window.end.astimezone(UTC) == datetime(2026, 11, 1, 7, tzinfo=UTC)


def test_unknown_period_is_refused():
    with pytest.raises(ValueError, match="unknown period"):
        period_window("weekly", now=NOW)


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        panel_window("24h", now=datetime(2026, 11, 21))


def test_a_dst_day_is_23_or_25_hours_long():
    spring = local_day_range(date(2026, 3, 29), tz="Europe/Berlin")
    autumn = local_day_range(date(2026, 10, 25), tz="Europe/Berlin")
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)


def test_last_days_are_dense_oldest_first_and_end_today():
    days = last_days(14, now=NOW)
    assert len(days) == 14
    assert days[0] == date(2026, 11, 8) and days[-1] == date(2026, 11, 21)
    assert all(b - a == timedelta(days=1) for a, b in zip(days, days[1:], strict=False))


def test_last_days_cross_a_leap_day():
    days = last_days(3, now=datetime(2028, 3, 1, 12, tzinfo=UTC))
    assert days == [date(2028, 2, 28), date(2028, 2, 29), date(2028, 3, 1)]


def test_dense_days_fill_missing_days_with_the_empty_value():
    days = last_days(3, now=NOW)
    filled = dense_days(days, {date(2026, 11, 20): 7}, empty=0)
    assert filled == [(date(2026, 11, 19), 0), (date(2026, 11, 20), 7), (date(2026, 11, 21), 0)]
