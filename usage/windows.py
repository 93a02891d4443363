"""Time windows as a pure module (no ORM): half-open [start, end) ranges.

Usage panel windows: 24 hours, 7 days, 30 days (the default) and all time, each
ending now. Main-page periods: daily (the last 24 hours), monthly (the last calendar
month) and yearly (the last calendar year), in the organization's time zone. Day
buckets are dense: every day of a range is present, with zero when nothing happened.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Window:
    """A named half-open range [start, end). start is None for all time."""

    key: str
    label: str
    start: datetime | None
    end: datetime

    def contains(self, moment: datetime) -> bool:
        return (self.start is None or moment >= self.start) and moment < self.end


# The panel's switcher, in the order it shows them.
PANEL_WINDOWS: dict[str, tuple[str, timedelta | None]] = {
    "24h": ("24 hours", timedelta(hours=24)),
    "7d": ("7 days", timedelta(days=7)),
    "30d": ("30 days", timedelta(days=30)),
    "all": ("All time", None),
}
DEFAULT_PANEL_WINDOW = "30d"

PERIODS = ("daily", "monthly", "yearly")
PERIOD_LABELS = {
    "daily": "Daily (last 24 hours)",
    "monthly": "Monthly (last calendar month)",
    "yearly": "Yearly (last calendar year)",
}


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


def panel_window(key: str | None, *, now: datetime) -> Window:
    """The panel window named key (unknown or missing keys give the 30-day default)."""
    now = _aware(now)
    if key not in PANEL_WINDOWS:
        key = DEFAULT_PANEL_WINDOW
    label, length = PANEL_WINDOWS[key]
    return Window(key=key, label=label, start=None if length is None else now - length, end=now)


def period_window(period: str, *, now: datetime, tz: str = "UTC") -> Window:
    """Daily: the last 24 hours. Monthly/yearly: the last full calendar month/year in tz."""
    now = _aware(now)
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    if period == "daily":
        return Window(period, PERIOD_LABELS[period], now - timedelta(hours=24), now)
    if period == "monthly":
        this_month = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        last_month = (this_month - timedelta(days=1)).replace(day=1)
        return Window(
            period,
            PERIOD_LABELS[period],
            _local_midnight(last_month.date(), zone),
            _local_midnight(this_month.date(), zone),
        )
    if period == "yearly":
        return Window(
            period,
            PERIOD_LABELS[period],
            _local_midnight(date(local.year - 1, 1, 1), zone),
            _local_midnight(date(local.year, 1, 1), zone),
        )
    raise ValueError(f"unknown period {period!r}; choose one of {', '.join(PERIODS)}")


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def local_day_start(day: date, *, tz: str = "UTC") -> datetime:
    """The instant the day begins in tz (as UTC)."""
    return _local_midnight(day, ZoneInfo(tz)).astimezone(UTC)


def local_day_range(day: date, *, tz: str = "UTC") -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in tz; 23 or 25 hours long on DST changes."""
    return local_day_start(day, tz=tz), local_day_start(day + timedelta(days=1), tz=tz)


def local_hours(day: date, *, tz: str = "UTC") -> list[tuple[datetime, datetime]]:
    """The day's hours [start, end), counted from its first instant: 23 to 25 of them on
    DST changes, the last one cut at the day's end (a 24.5-hour day ends on a half hour)."""
    start, end = local_day_range(day, tz=tz)
    hours = []
    while start < end:
        hours.append((start, min(start + timedelta(hours=1), end)))
        start += timedelta(hours=1)
    return hours


def last_days(n: int, *, now: datetime, tz: str = "UTC") -> list[date]:
    """The last n calendar days in tz, oldest first, ending with today."""
    today = _aware(now).astimezone(ZoneInfo(tz)).date()
    return [today - timedelta(days=i) for i in range(n - 1, -1, -1)]


def days_between(start: date, end: date) -> Iterator[date]:
    """Every day from start up to but not including end."""
    day = start
    while day < end:
        yield day
        day += timedelta(days=1)


def dense_days[V](
    days: Iterable[date], values: Mapping[date, V], *, empty: V
) -> list[tuple[date, V]]:
    """Pair each day with its value, or with empty where nothing happened (no gaps)."""
    return [(day, values.get(day, empty)) for day in days]
