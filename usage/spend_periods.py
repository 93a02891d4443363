"""A budget's period (day, week from Monday, calendar month) in the organization's zone,
as a pure module: the local days it covers, half-open, and the instant it resets."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo


@dataclass(frozen=True)
class Period:
    first_day: date  # local, inclusive
    end_day: date  # local, exclusive
    start: datetime  # aware, the first instant
    resets_at: datetime  # aware, the first instant of the next period

    def elapsed_fraction(self, now: datetime) -> float:
        total = (self.resets_at - self.start).total_seconds()
        return min(1.0, max(0.0, (now - self.start).total_seconds() / total))


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def period_of(kind: str, *, now: datetime, tz: tzinfo) -> Period:
    """The period of this kind ("day", "week", "month") containing now."""
    today = now.astimezone(tz).date()
    if kind == "day":
        first, end = today, today + timedelta(days=1)
    elif kind == "week":
        first = today - timedelta(days=today.weekday())
        end = first + timedelta(days=7)
    elif kind == "month":
        first = today.replace(day=1)
        end = (first + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown period {kind!r}")
    return Period(first, end, _midnight(first, tz), _midnight(end, tz))


def local_day(moment: datetime, tz: tzinfo) -> date:
    return moment.astimezone(tz).date()
