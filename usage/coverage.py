"""Which parts of a time range the daily rollups answer, and which the raw records do.

A range [start, end) splits into whole local days that are rolled up and clean (read
from the rollup tables) and everything else (read from the raw records through their
(organization, time) indexes): the open day, a window's partial first and last days
("24 hours" starts mid-day), and any day not rolled up yet, marked dirty by late
records, or computed in another time zone than the organization's current one.
Sums over the two parts give exactly what the raw records alone give.
"""

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from accounts.models import Organization
from usage.windows import local_day_start

# An interval of instants; None is unbounded (the beginning, or no end).
Interval = tuple[datetime | None, datetime | None]


@dataclass(frozen=True)
class Split:
    """A range cut into raw intervals and runs of clean rollup days [first, end)."""

    raw: list[Interval] = field(default_factory=list)
    days: list[tuple[date, date]] = field(default_factory=list)
    # The clean day that starts exactly where the range does: its carried-in figures
    # (worker sessions already running then) belong to the range.
    first_day_at_start: date | None = None
    # A range starting early in a clean day reads that whole day from the rollups and
    # takes off the raw records before the range's start (`minus`): fewer records read
    # than the rest of the day. `trimmed` is that day and the range's real start.
    minus: list[Interval] = field(default_factory=list)
    trimmed: tuple[date, datetime] | None = None


@dataclass(frozen=True)
class RollupCoverage:
    """The organization's clean rollup days (computed in `tz`, before `today`)."""

    tz: str
    today: date
    clean_days: tuple[date, ...] = ()

    def split(
        self,
        start: datetime | None,
        end: datetime | None,
        *,
        tz: str | None = None,
        complement: bool = True,
    ) -> Split:
        """Cut [start, end) (None: unbounded). A caller bucketing by days in another zone
        than the rollups' (`tz`) gets everything raw; `complement` allows reading a
        clean first day whole minus its part before `start` (sums and counts only)."""
        if start is not None and end is not None and end <= start:
            return Split()
        if tz is not None and tz != self.tz:
            return Split(raw=[(start, end)])
        close = local_day_start(self.today, tz=self.tz)
        boundary = close if end is None else min(end, close)
        zone = ZoneInfo(self.tz)
        last = boundary.astimezone(zone).date()  # days before it are whole inside
        minus: list[Interval] = []
        trimmed = None
        if complement and start is not None:
            day = start.astimezone(zone).date()
            day_start = local_day_start(day, tz=self.tz)
            day_end = local_day_start(day + timedelta(days=1), tz=self.tz)
            early = day_start < start and start - day_start < day_end - start
            if early and day_end <= boundary and day in self.clean_days:
                minus, trimmed = [(day_start, start)], (day, start)
                start = day_start
        if start is None:
            first_index = 0
        else:
            first = start.astimezone(zone).date()
            if local_day_start(first, tz=self.tz) < start:
                first += timedelta(days=1)
            first_index = bisect_left(self.clean_days, first)
        days = self.clean_days[first_index : bisect_left(self.clean_days, last)]
        runs: list[tuple[date, date]] = []
        for day in days:
            if runs and runs[-1][1] == day:
                runs[-1] = (runs[-1][0], day + timedelta(days=1))
            else:
                runs.append((day, day + timedelta(days=1)))
        raw: list[Interval] = []
        cursor: datetime | None = start
        for first_day, end_day in runs:
            lo = local_day_start(first_day, tz=self.tz)
            if cursor is None or cursor < lo:
                raw.append((cursor, lo))
            cursor = local_day_start(end_day, tz=self.tz)
        if not runs or end is None or cursor < end:  # type: ignore[operator]
            raw.append((cursor, end))
        first_day_at_start = None
        if runs and start is not None and local_day_start(runs[0][0], tz=self.tz) == start:
            first_day_at_start = None if trimmed else runs[0][0]
        return Split(
            raw=raw,
            days=runs,
            first_day_at_start=first_day_at_start,
            minus=minus,
            trimmed=trimmed,
        )


def rollup_coverage(*, org: Organization, now: datetime | None = None) -> RollupCoverage:
    """The organization's clean rollup days, in one query."""
    from usage.models import RollupState

    tz = org.time_zone or "UTC"
    today = (now or timezone.now()).astimezone(ZoneInfo(tz)).date()
    days = RollupState.objects.filter(
        organization=org, time_zone=tz, dirty=False, computed_at__isnull=False, day__lt=today
    ).order_by("day")
    return RollupCoverage(tz=tz, today=today, clean_days=tuple(days.values_list("day", flat=True)))


def raw_only(*, org: Organization, now: datetime | None = None) -> RollupCoverage:
    """Coverage with no rollup days (everything read raw): the reference in tests."""
    tz = org.time_zone or "UTC"
    return RollupCoverage(tz=tz, today=(now or timezone.now()).astimezone(ZoneInfo(tz)).date())
