"""Which parts of a time range the rollups answer, and which the raw records do.

A range [start, end) splits into whole local days that are rolled up and clean (read
from the rollup tables' day rows), whole clean hours of the rest (the hour rows: the
open day's finished hours, a sliding window's partial first day), and everything else
(read from the raw records through their (organization, time) indexes): the current
hour, the partial hours at a window's edges, and any day or hour not rolled up yet,
marked dirty by late records, or computed in another time zone than the organization's
current one. Sums over the parts give exactly what the raw records alone give.

**Buckets, not records.** Everything the day and hour rows leave is read from the bucket
aggregates kept current by ingestion (rollups/services/aggregates.py) wherever they are
kept (`buckets_from`: the organization's last HOUR_DAYS days), so a page reads raw
records only for intervals older than that which are not rolled up (a very late record's
day until the rollup recomputes it) and never for the open hour. A range edge inside a
bucket moves to the bucket's end: a bucket belongs to [start, end) when its first instant
does, so the figures are those of [ceil(start), ceil(end)) with ceil to the bucket width
(one minute by default: exact to the minute; a window ending now includes the open
bucket whole). Adjacent ranges share no bucket, so a range's sub-ranges sum to it.
"""

from bisect import bisect_left
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from django.db.models import IntegerField, Value
from django.utils import timezone

from accounts.models import Organization
from core.calendar import local_day_start, local_hours
from rollups.models import RollupHour, RollupState
from rollups.services.aggregates import (
    HOUR_DAYS,
    bucket_ceil,
    bucket_seconds,
    buckets_enabled,
    buckets_horizon,
)

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
    # Runs of clean hours outside the day runs: (day, first hour, end hour).
    hours: list[tuple[date, int, int]] = field(default_factory=list)
    # The clean hour that starts exactly where the range does (carried-in, as above).
    first_hour_at_start: tuple[date, int] | None = None
    # Intervals read from the bucket aggregates (edges on bucket boundaries), and the
    # `minus` ones to take off; `raw` and `minus` keep only what the buckets do not hold.
    buckets: list[Interval] = field(default_factory=list)
    minus_buckets: list[Interval] = field(default_factory=list)
    # Where the range's figures start once its edge moved to a bucket boundary (the
    # instant sessions carried in are counted at), when its start is read from buckets.
    bucket_start: datetime | None = None


@dataclass(frozen=True)
class RollupCoverage:
    """The organization's clean rollup days (computed in `tz`, before `today`) and clean
    hours (day, hour counted from the day's first instant)."""

    tz: str
    today: date
    clean_days: tuple[date, ...] = ()
    clean_hours: tuple[tuple[date, int], ...] = ()
    # The first instant the bucket aggregates hold (None: none are read) and their width.
    buckets_from: datetime | None = None
    bucket_seconds: int = 60

    def _ceil(self, moment: datetime) -> datetime:
        return bucket_ceil(moment, self.bucket_seconds)

    def _bucketed(self, intervals: list[Interval]) -> tuple[list[Interval], list[Interval]]:
        """(raw rest, bucket intervals) of `intervals`: what lies at or after
        `buckets_from` is read from buckets, its edges moved to bucket boundaries."""
        since = self.buckets_from
        if since is None:
            return intervals, []
        raw: list[Interval] = []
        buckets: list[Interval] = []
        for lo, hi in intervals:
            if hi is not None and hi <= since:
                raw.append((lo, hi))
                continue
            if lo is None or lo < since:
                raw.append((lo, since))
                lo = since
            b_lo, b_hi = self._ceil(lo), None if hi is None else self._ceil(hi)
            if b_hi is None or b_lo < b_hi:
                buckets.append((b_lo, b_hi))
        return raw, buckets

    def _with_buckets(
        self, split: "Split", start: datetime | None, end: datetime | None
    ) -> "Split":
        raw, buckets = self._bucketed(split.raw)
        minus, minus_buckets = self._bucketed(split.minus)
        bucket_start = None
        if start is not None and self.buckets_from is not None and start >= self.buckets_from:
            bucket_start = self._ceil(start)
            if end is not None and self._ceil(end) <= bucket_start:
                bucket_start = None  # the range holds no whole bucket: it is empty
        return replace(
            split,
            raw=raw,
            minus=minus,
            buckets=buckets,
            minus_buckets=minus_buckets,
            bucket_start=bucket_start,
        )

    @cached_property
    def _slots(self) -> list[tuple[datetime, datetime, date, int]]:
        """The clean hours as instants [lo, hi), in order."""
        by_day: dict[date, list] = {}
        slots = []
        for day, hour in sorted(self.clean_hours):
            hours = by_day.setdefault(day, local_hours(day, tz=self.tz))
            if hour < len(hours):
                slots.append((*hours[hour], day, hour))
        return slots

    @cached_property
    def _slot_starts(self) -> list[datetime]:
        return [slot[0] for slot in self._slots]

    @cached_property
    def _hour_days(self) -> frozenset[date]:
        return frozenset(day for day, _hour in self.clean_hours)

    def _carve(self, lo: datetime | None, hi: datetime | None) -> tuple[list[Interval], list]:
        """Cut the clean hours lying whole inside [lo, hi) out of it: (raw rest, slots)."""
        slots = self._slots
        i = 0 if lo is None else bisect_left(self._slot_starts, lo)
        raw: list[Interval] = []
        used = []
        cursor = lo
        while i < len(slots) and (hi is None or slots[i][1] <= hi):
            slot = slots[i]
            if cursor is None or cursor < slot[0]:
                raw.append((cursor, slot[0]))
            used.append(slot)
            cursor = slot[1]
            i += 1
        if not used:
            return [(lo, hi)], []
        if hi is None or cursor < hi:  # type: ignore[operator]
            raw.append((cursor, hi))
        return raw, used

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
            return self._with_buckets(Split(raw=[(start, end)]), start, end)
        close = local_day_start(self.today, tz=self.tz)
        boundary = close if end is None else min(end, close)
        minus: list[Interval] = []
        trimmed = None
        if complement and start is not None:
            minus, trimmed = self._complement(start, boundary)
            if trimmed is not None:
                start = local_day_start(trimmed[0], tz=self.tz)
        runs = self._day_runs(start, boundary)
        raw = self._around_runs(start, end, runs)
        first_day_at_start = None
        if runs and start is not None and local_day_start(runs[0][0], tz=self.tz) == start:
            first_day_at_start = None if trimmed else runs[0][0]
        hours: list[tuple[date, int, int]] = []
        first_hour_at_start = None
        if self.clean_hours:
            raw, hours, first_hour_at_start = self._carve_hours(raw, start, trimmed)
        split = Split(
            raw=raw,
            days=runs,
            first_day_at_start=first_day_at_start,
            minus=minus,
            trimmed=trimmed,
            hours=hours,
            first_hour_at_start=first_hour_at_start,
        )
        return self._with_buckets(split, start, end)

    def _complement(
        self, start: datetime, boundary: datetime
    ) -> tuple[list[Interval], tuple[date, datetime] | None]:
        """When start falls early in a clean day (without clean hours) wholly before the
        boundary, read that day whole minus [day start, start): (minus, (day, start));
        else ([], None)."""
        zone = ZoneInfo(self.tz)
        day = start.astimezone(zone).date()
        day_start = local_day_start(day, tz=self.tz)
        day_end = local_day_start(day + timedelta(days=1), tz=self.tz)
        early = day_start < start and start - day_start < day_end - start
        # A day with clean hours has its partial part read hour by hour instead.
        hourly = day in self._hour_days
        if early and day_end <= boundary and day in self.clean_days and not hourly:
            return [(day_start, start)], (day, start)
        return [], None

    def _day_runs(self, start: datetime | None, boundary: datetime) -> list[tuple[date, date]]:
        """The clean days lying whole inside [start, boundary), as runs [first, end) of
        consecutive days."""
        zone = ZoneInfo(self.tz)
        last = boundary.astimezone(zone).date()  # days before it are whole inside
        if start is None:
            first_index = 0
        else:
            first = start.astimezone(zone).date()
            if local_day_start(first, tz=self.tz) < start:
                first += timedelta(days=1)
            first_index = bisect_left(self.clean_days, first)
        runs: list[tuple[date, date]] = []
        for day in self.clean_days[first_index : bisect_left(self.clean_days, last)]:
            if runs and runs[-1][1] == day:
                runs[-1] = (runs[-1][0], day + timedelta(days=1))
            else:
                runs.append((day, day + timedelta(days=1)))
        return runs

    def _around_runs(
        self, start: datetime | None, end: datetime | None, runs: list[tuple[date, date]]
    ) -> list[Interval]:
        """The parts of [start, end) outside the runs of clean days."""
        raw: list[Interval] = []
        cursor: datetime | None = start
        for first_day, end_day in runs:
            lo = local_day_start(first_day, tz=self.tz)
            if cursor is None or cursor < lo:
                raw.append((cursor, lo))
            cursor = local_day_start(end_day, tz=self.tz)
        if not runs or end is None or cursor < end:  # type: ignore[operator]
            raw.append((cursor, end))
        return raw

    def _carve_hours(
        self,
        raw: list[Interval],
        start: datetime | None,
        trimmed: tuple[date, datetime] | None,
    ) -> tuple[list[Interval], list[tuple[date, int, int]], tuple[date, int] | None]:
        """Cut the clean hours out of the raw intervals: (raw rest, hour runs (day, first
        hour, end hour), the clean hour beginning at start when it is not trimmed)."""
        carved: list[Interval] = []
        hours: list[tuple[date, int, int]] = []
        first_hour_at_start = None
        for lo, hi in raw:
            rest, used = self._carve(lo, hi)
            carved.extend(rest)
            for slot_lo, _hi, day, hour in used:
                if hours and hours[-1][0] == day and hours[-1][2] == hour:
                    hours[-1] = (day, hours[-1][1], hour + 1)
                else:
                    hours.append((day, hour, hour + 1))
                if slot_lo == start and not trimmed:
                    first_hour_at_start = (day, hour)
        return carved, hours, first_hour_at_start


def rollup_coverage(*, org: Organization, now: datetime | None = None) -> RollupCoverage:
    """The organization's clean rollup days and hours, in one query."""

    tz = org.time_zone or "UTC"
    today = (now or timezone.now()).astimezone(ZoneInfo(tz)).date()
    clean = {"organization": org, "time_zone": tz, "dirty": False, "computed_at__isnull": False}
    days = (
        RollupState.objects.filter(**clean, day__lt=today)
        .annotate(h=Value(-1, output_field=IntegerField()))
        .values_list("day", "h")
        .order_by()
    )
    hours = (
        RollupHour.objects.filter(**clean, day__gte=today - timedelta(days=HOUR_DAYS))
        .values_list("day", "hour")
        .order_by()
    )
    clean_days, clean_hours = [], []
    for day, hour in days.union(hours, all=True).order_by():
        day = day if isinstance(day, date) else date.fromisoformat(str(day))
        if hour == -1:
            clean_days.append(day)
        else:
            clean_hours.append((day, hour))
    return RollupCoverage(
        tz=tz,
        today=today,
        clean_days=tuple(sorted(clean_days)),
        clean_hours=tuple(sorted(clean_hours)),
        buckets_from=buckets_horizon(org=org, now=now) if buckets_enabled() else None,
        bucket_seconds=bucket_seconds(),
    )


def raw_only(*, org: Organization, now: datetime | None = None) -> RollupCoverage:
    """Coverage with no rollup days nor buckets (everything read raw): the reference in
    tests."""
    tz = org.time_zone or "UTC"
    return RollupCoverage(tz=tz, today=(now or timezone.now()).astimezone(ZoneInfo(tz)).date())
