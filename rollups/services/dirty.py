"""Dirty marking: ingestion's note, in its own transaction, that a closed day or a
finished hour got late records (or a job moved), so the next sweep recomputes it."""

from bisect import bisect_right
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from accounts.models import Organization
from core.calendar import local_hours, org_today
from rollups.models import RollupHour, RollupState
from rollups.services.aggregates import HOUR_DAYS


def rollup_spans_mark_dirty(
    *,
    org: Organization,
    spans: Iterable[tuple[datetime, datetime]],
    now: datetime | None = None,
) -> None:
    """Mark what records spanning [start, end] (a single instant: start == end) change:
    their closed days, and their finished hours among the HOUR_DAYS kept (one upsert
    each; days first, then hours in order, the order the rollups lock them in).

    Called inside ingestion's transaction: the flags commit with the records.
    """
    now = now or timezone.now()
    tz = org.time_zone or "UTC"
    zone = ZoneInfo(tz)
    # Zone offsets and their changes fall on quarter hours, so local days and hours start
    # on UTC quarter hours: an instant marks what the start of its quarter hour marks, and
    # a batch's thousand spans shrink to the few quarter hours they start and end in.
    spans = {(_quarter_hour(start), _quarter_hour(end)) for start, end in spans}
    # Each span's local days, computed once (a batch brings up to a thousand spans).
    located: list[tuple[datetime, datetime, list[date]]] = []
    days: set[date] = set()
    for start, end in spans:
        first_day = start.astimezone(zone).date()
        last_day = first_day if end == start else end.astimezone(zone).date()
        span_days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]
        located.append((start, end, span_days))
        days.update(span_days)
    rollup_days_mark_dirty(org=org, days=days, now=now)
    oldest = org_today(org, now=now) - timedelta(days=HOUR_DAYS)
    slots = {day: local_hours(day, tz=tz) for day in days if day >= oldest}
    starts = {day: [lo for lo, _hi in hours] for day, hours in slots.items()}
    hours: set[tuple[date, int]] = set()
    for start, end, span_days in located:
        for day in span_days:
            if day not in slots:
                continue
            # The day's hours overlapping [start, end] (a single instant: its hour).
            first = max(bisect_right(starts[day], start) - 1, 0)
            last = bisect_right(starts[day], end) - 1
            for n in range(first, last + 1):
                if slots[day][n][1] <= now:
                    hours.add((day, n))
    if not hours:
        return
    RollupHour.objects.bulk_create(
        [
            RollupHour(organization_id=org.pk, day=day, hour=n, dirty=True, dirtied_at=now)
            for day, n in sorted(hours)
        ],
        update_conflicts=True,
        unique_fields=["organization", "day", "hour"],
        update_fields=["dirty", "dirtied_at"],
    )


def _quarter_hour(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def rollup_days_mark_dirty(
    *, org: Organization, days: Iterable[date], now: datetime | None = None
) -> int:
    """Mark the closed days among `days` for recomputation (one upsert); returns how many.

    Called inside ingestion's transaction: the flag commits with the records.
    """
    now = now or timezone.now()
    today = org_today(org, now=now)
    closed = sorted({day for day in days if day < today})
    if not closed:
        return 0
    RollupState.objects.bulk_create(
        [
            RollupState(organization_id=org.pk, day=day, dirty=True, dirtied_at=now)
            for day in closed
        ],
        update_conflicts=True,
        unique_fields=["organization", "day"],
        update_fields=["dirty", "dirtied_at"],
    )
    return len(closed)
