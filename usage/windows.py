"""Time windows as a pure module (no ORM): half-open [start, end) ranges.

Usage panel windows: 24 hours, 7 days, 30 days (the default) and all time, each
ending now. Main-page periods: daily (the last 24 hours), monthly (the last calendar
month) and yearly (the last calendar year), in the organization's time zone. Day
buckets are dense: every day of a range is present, with zero when nothing happened.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from core.calendar import first_day_of_month, local_midnight, local_month_start, month_after


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
        this_month = local_month_start(now, tz=zone)
        last_month = first_day_of_month(this_month.date() - timedelta(days=1))
        return Window(period, PERIOD_LABELS[period], local_midnight(last_month, zone), this_month)
    if period == "yearly":
        return Window(
            period,
            PERIOD_LABELS[period],
            local_midnight(date(local.year - 1, 1, 1), zone),
            local_midnight(date(local.year, 1, 1), zone),
        )
    raise ValueError(f"unknown period {period!r}; choose one of {', '.join(PERIODS)}")


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


# --- Report buckets (the explorer and GET /api/v1/usage/report) -------------------------

BUCKETS = ("1h", "1d", "1w", "1mo")
BUCKET_LABELS = {"1h": "Hour", "1d": "Day", "1w": "Week", "1mo": "Month"}
# Hours only for ranges up to 31 days; no more buckets than this in one report.
MAX_HOUR_RANGE = timedelta(days=31)
MAX_BUCKETS = 1000


def _bucket_floor(moment: datetime, bucket: str, zone: ZoneInfo) -> datetime:
    """The start of the bucket holding `moment`: a local hour, day, Monday or 1st."""
    local = moment.astimezone(zone)
    if bucket == "1h":
        # Whole hours since the local hour began: exact across DST and half-hour zones.
        return (
            moment
            - timedelta(minutes=local.minute, seconds=local.second)
            - timedelta(microseconds=local.microsecond)
        )
    day = local.date()
    if bucket == "1w":
        day -= timedelta(days=day.weekday())
    elif bucket == "1mo":
        day = first_day_of_month(day)
    return local_midnight(day, zone)


def _bucket_next(lo: datetime, bucket: str, zone: ZoneInfo) -> datetime:
    if bucket == "1h":
        return lo.astimezone(UTC) + timedelta(hours=1)
    day = lo.astimezone(zone).date()
    if bucket == "1d":
        day += timedelta(days=1)
    elif bucket == "1w":
        day += timedelta(days=7)
    else:
        day = month_after(day)
    return local_midnight(day, zone)


def report_buckets(
    start: datetime, end: datetime, *, bucket: str, tz: str = "UTC"
) -> list[tuple[datetime, datetime]]:
    """Dense buckets covering [start, end) in tz, the first and last cut at the range's
    edges: [(lo, hi), ...]. Raises ValueError naming what is wrong."""
    # In UTC: arithmetic on times in a zone is wall-clock arithmetic in Python, which
    # would skip the repeated hour when DST ends.
    start, end = _aware(start).astimezone(UTC), _aware(end).astimezone(UTC)
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}")
    if end <= start:
        raise ValueError("end must be after start")
    if bucket == "1h" and end - start > MAX_HOUR_RANGE:
        raise ValueError("hourly buckets are for ranges of up to 31 days")
    zone = ZoneInfo(tz)
    buckets = []
    lo = _bucket_floor(start, bucket, zone)
    while lo < end:
        hi = _bucket_next(lo, bucket, zone)
        buckets.append((max(lo, start), min(hi, end)))
        if len(buckets) > MAX_BUCKETS:
            raise ValueError(f"more than {MAX_BUCKETS} buckets: choose a coarser bucket")
        lo = hi
    return buckets


def previous_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The range of equal length just before [start, end)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    return start - (end - start), start


QUICK_RANGES = {
    "today": "Today",
    "yesterday": "Yesterday",
    "this_week": "This week",
    "last_week": "Last week",
    "this_month": "This month",
    "last_month": "Last month",
    "last_90_days": "Last 90 days",
}


def quick_range(name: str, *, now: datetime, tz: str = "UTC") -> tuple[datetime, datetime]:
    """A named range in tz: calendar days, Monday weeks and months; the current ones end
    now. Raises KeyError for an unknown name."""
    if name not in QUICK_RANGES:
        raise KeyError(name)
    zone = ZoneInfo(tz)
    now = _aware(now)
    today = now.astimezone(zone).date()
    monday = today - timedelta(days=today.weekday())
    first = first_day_of_month(today)
    previous_first = first_day_of_month(first - timedelta(days=1))
    spans = {
        "today": (today, None),
        "yesterday": (today - timedelta(days=1), today),
        "this_week": (monday, None),
        "last_week": (monday - timedelta(days=7), monday),
        "this_month": (first, None),
        "last_month": (previous_first, first),
        "last_90_days": (today - timedelta(days=89), None),
    }
    lo, hi = spans[name]
    return local_midnight(lo, zone), now if hi is None else local_midnight(hi, zone)


# --- Budget periods (spend controls) -----------------------------------------------------

BUDGET_PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class Period:
    """A budget's period (a day, a week from Monday, a calendar month) in a zone."""

    first_day: date  # local, inclusive
    end_day: date  # local, exclusive
    start: datetime  # aware, the first instant
    resets_at: datetime  # aware, the first instant of the next period

    def elapsed_fraction(self, now: datetime) -> float:
        total = (self.resets_at - self.start).total_seconds()
        return min(1.0, max(0.0, (now - self.start).total_seconds() / total))


def period_of(kind: str, *, now: datetime, tz: tzinfo) -> Period:
    """The period of this kind ("day", "week", "month") containing now."""
    today = now.astimezone(tz).date()
    if kind == "day":
        first, end = today, today + timedelta(days=1)
    elif kind == "week":
        first = today - timedelta(days=today.weekday())
        end = first + timedelta(days=7)
    elif kind == "month":
        first, end = first_day_of_month(today), month_after(today)
    else:
        raise ValueError(f"unknown period {kind!r}")
    return Period(first, end, local_midnight(first, tz), local_midnight(end, tz))
