"""An organization's calendar: its time zone, its today, and its days, hours and months
as half-open [start, end) ranges of aware instants.

Every app counts days and months in the organization's zone (statements and finance in
billing, rollups and windows in usage, allocation alerts), so this is their one home,
below every app: anything with a `time_zone` (an Organization) has a calendar. Pure
functions: nothing here reads the database; usage/windows.py builds the panel's windows
and the report's buckets on them.

Months come in two shapes: a month's first day (`first_day_of_month`, a date) and the
first instant of the month holding a moment in a zone (`local_month_start`, aware). The
partition code's UTC months (usage/services/partitions.py) are not these.
"""

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

# A zone by name ("Europe/Paris") or as a tzinfo: every function here takes either.
Zone = str | tzinfo


class HasTimeZone(Protocol):
    """What has a calendar: an organization (its `time_zone`, an IANA name or empty)."""

    @property
    def time_zone(self) -> str: ...


def as_zone(tz: Zone | None) -> tzinfo:
    """tz itself when it is a tzinfo, else the zone it names (UTC when empty/unknown)."""
    return tz if isinstance(tz, tzinfo) else zone_named(tz)


def zone_named(name: str | None) -> ZoneInfo:
    """The zone called `name`; UTC when it is empty or unknown to this machine."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def org_zone(org: HasTimeZone) -> ZoneInfo:
    """The organization's time zone (UTC when unset or unknown)."""
    return zone_named(org.time_zone)


def org_today(org: HasTimeZone, *, now: datetime | None = None) -> date:
    """The organization's current (open) day in its time zone (at `now`, default now)."""
    return (now or timezone.now()).astimezone(org_zone(org)).date()


# Days and hours --------------------------------------------------------------------------


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """The first instant of `day` in `zone`, as an aware time in that zone."""
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def local_day_start(day: date, *, tz: Zone = "UTC") -> datetime:
    """The instant the day begins in tz (as UTC)."""
    return local_midnight(day, as_zone(tz)).astimezone(UTC)


def local_day_range(day: date, *, tz: Zone = "UTC") -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in tz; 23 or 25 hours long on DST changes."""
    return local_day_start(day, tz=tz), local_day_start(day + timedelta(days=1), tz=tz)


def local_hours(day: date, *, tz: Zone = "UTC") -> list[tuple[datetime, datetime]]:
    """The day's hours [start, end), counted from its first instant: 23 to 25 of them on
    DST changes, the last one cut at the day's end (a 24.5-hour day ends on a half hour)."""
    start, end = local_day_range(day, tz=tz)
    hours = []
    while start < end:
        hours.append((start, min(start + timedelta(hours=1), end)))
        start += timedelta(hours=1)
    return hours


# Months ------------------------------------------------------------------------------------


def first_day_of_month(day: date) -> date:
    """The first day of the calendar month holding `day`."""
    return day.replace(day=1)


def month_after(day: date) -> date:
    """The first day of the calendar month after the one holding `day`."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def local_month_start(at: datetime, *, tz: Zone = "UTC") -> datetime:
    """The first instant of the calendar month holding `at` in tz (aware, in tz)."""
    zone = as_zone(tz)
    return local_midnight(first_day_of_month(at.astimezone(zone).date()), zone)


def next_month(start: datetime) -> datetime:
    """The first instant of the calendar month after the one starting at `start`."""
    return local_midnight(month_after(start.date()), start.tzinfo or UTC)


def month_bounds(*, month: date, tz: Zone = "UTC") -> tuple[datetime, datetime]:
    """[start, end) of the calendar month holding `month` in tz."""
    zone = as_zone(tz)
    first = first_day_of_month(month)
    return local_midnight(first, zone), local_midnight(month_after(first), zone)


def month_starts(*, now: datetime, tz: Zone = "UTC", months: int) -> list[date]:
    """The first days of the last `months` calendar months in tz, oldest first, the
    current one last."""
    first = first_day_of_month(now.astimezone(as_zone(tz)).date())
    firsts = [first]
    for _ in range(months - 1):
        firsts.append(first_day_of_month(firsts[-1] - timedelta(days=1)))
    return firsts[::-1]
