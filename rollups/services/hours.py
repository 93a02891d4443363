"""Hour rollups: finished hours of the open and recent days, rebuilt with their day or
one at a time by the five-minute sweep, and pruned past HOUR_DAYS."""

import logging
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import Organization
from core.calendar import local_hours, org_today
from rollups.models import RollupHour
from rollups.services.aggregates import HOUR_DAYS, aggregates_prune, aggregates_rebuild
from rollups.services.build import (
    KINDS,
    RollupResult,
    hour_slots_case,
    interval_insert,
    query_dimension_selects,
    rollup_selects,
    rows_insert_select,
)
from usage.locks import organization_usage_lock
from usage.models import WorkerSession

logger = logging.getLogger(__name__)


# An hour is rolled up this long after it ends, so an ingestion transaction that began
# before the hour's end (and so did not mark it dirty) has committed by then.
HOUR_SETTLE = timedelta(minutes=5)


def _worker_hours(org: Organization, slots: list[tuple[datetime, datetime]]) -> set[int]:
    """The hours of the day some worker session overlaps (one DISTINCT query over the
    day's sessions): only those have worker rows."""
    lo, hi = slots[0][0], slots[-1][1]
    sessions = WorkerSession.objects.filter(
        Q(ended_at__gt=lo, started_at__lt=hi) | Q(started_at__gte=lo, started_at__lt=hi),
        organization_id=org.pk,
    )
    spans = sessions.annotate(
        b=hour_slots_case("started_at", slots), e=hour_slots_case("ended_at", slots)
    )
    hours: set[int] = set()
    for first, last in spans.values_list("b", "e").distinct():
        hours.update(range(first, last + 1))
    return hours


def _every_hour_insert(
    org: Organization, day: date, slots: list[tuple[datetime, datetime]]
) -> None:
    """Insert the rows of every hour of the day: one statement per kind grouped by hour,
    and for workers one per hour some session overlaps."""
    selects = rollup_selects(org, day, slots[0][0], slots[-1][1], slots=slots)
    for kind in KINDS:
        if kind.name == "worker":
            for n in sorted(_worker_hours(org, slots)):
                worker = rollup_selects(org, day, *slots[n], hour=n)["worker"]
                rows_insert_select(kind, worker)
            continue
        rows_insert_select(kind, selects[kind.name])
        if kind.name == "query":
            for select in query_dimension_selects(org, day, every_hour=True):
                rows_insert_select(kind, select)


def _hour_rows(org: Organization, day: date) -> dict[int, int]:
    """The day's hour rollup rows of every kind, counted per hour (one query per kind)."""
    rows: dict[int, int] = {}
    for kind in KINDS:
        counted = (
            kind.model._default_manager.filter(organization_id=org.pk, day=day, hour__isnull=False)
            .values_list("hour")
            .annotate(n=Count("id"))
            .order_by()
        )
        for hour, n in counted:
            rows[hour] = rows.get(hour, 0) + n
    return rows


def hours_rebuild_locked(
    *,
    org: Organization,
    day: date,
    hours: list[int],
    tz: str,
    now: datetime,
) -> int:
    """Recompute some hours of a day (inside the caller's transaction): lock their state
    rows in hour order (the lock per org-hour), replace their rows, mark them clean.

    Every hour of the day at once (the day's rollup) takes one statement per kind
    grouped by hour too, so the day's records are read once more, not once per hour;
    worker sessions, clipped to each hour, take one statement per hour they overlap.
    """
    RollupHour.objects.bulk_create(
        [
            RollupHour(organization_id=org.pk, day=day, hour=h, dirty=True, dirtied_at=now)
            for h in hours
        ],
        ignore_conflicts=True,
    )
    states = list(
        RollupHour.objects.select_for_update()
        .filter(organization_id=org.pk, day=day, hour__in=hours)
        .order_by("hour")
    )
    for kind in KINDS:
        kind.model._default_manager.filter(organization_id=org.pk, day=day, hour__in=hours).delete()
    slots = local_hours(day, tz=tz)
    if len(hours) < len(slots):
        for state in states:
            state.rows = interval_insert(org, day, state.hour, *slots[state.hour])
    else:
        _every_hour_insert(org, day, slots)
        rows = _hour_rows(org, day)
        for state in states:
            state.rows = rows.get(state.hour, 0)
    total = 0
    for state in states:
        total += state.rows
        state.dirty, state.time_zone, state.computed_at = False, tz, now
    RollupHour.objects.bulk_update(states, ["dirty", "time_zone", "computed_at", "rows"])
    return total


@transaction.atomic
def rollup_hour(*, org: Organization, day: date, hour: int) -> RollupResult:
    """Recompute one finished hour of the organization's day (hours counted from the
    day's first instant); the same rows every time.

    Raises ValueError for an hour not finished yet, not in the day, or older than the
    HOUR_DAYS kept.
    """
    started = time.monotonic()
    tz = org.time_zone or "UTC"
    now = timezone.now()
    slots = local_hours(day, tz=tz)
    if not 0 <= hour < len(slots):
        raise ValueError(f"{day} has {len(slots)} hours in {tz}; there is no hour {hour}")
    if slots[hour][1] > now:
        raise ValueError(f"hour {hour} of {day} has not ended yet in {tz}")
    if day < org_today(org, now=now) - timedelta(days=HOUR_DAYS):
        raise ValueError(f"{day} is older than the {HOUR_DAYS} days whose hours are kept")
    organization_usage_lock(org)  # before the hour's lock, as ingestion orders them
    rows = hours_rebuild_locked(org=org, day=day, hours=[hour], tz=tz, now=now)
    bucket_rows = aggregates_rebuild(org=org, lo=slots[hour][0], hi=slots[hour][1], now=now)
    duration_ms = round((time.monotonic() - started) * 1000)
    logger.info(
        "usage.rollup.hour",
        extra={
            "org": org.pk,
            "day": day.isoformat(),
            "hour": hour,
            "rows": rows,
            "duration_ms": duration_ms,
        },
    )
    return RollupResult(
        day=day,
        rows=rows,
        restatements=0,
        duration_ms=duration_ms,
        bucket_rows_restated=bucket_rows,
    )


def rollup_hours_due(
    *, now: datetime | None = None, org: Organization | None = None
) -> list[tuple[int, date, int]]:
    """(organization id, day, hour) triples to recompute: the finished hours of every
    organization's open and previous day (HOUR_SETTLE after they end) not clean in its
    zone, and dirty hours among the HOUR_DAYS kept."""
    now = now or timezone.now()
    orgs = Organization.objects.all() if org is None else Organization.objects.filter(pk=org.pk)
    due: set[tuple[int, date, int]] = set()
    settled = now - HOUR_SETTLE
    for tz in orgs.values_list("time_zone", flat=True).distinct().order_by():
        zone = tz or "UTC"
        today = now.astimezone(ZoneInfo(zone)).date()
        slots = [
            (day, n)
            for day in (today - timedelta(days=1), today)
            for n, (_lo, hi) in enumerate(local_hours(day, tz=zone))
            if hi <= settled
        ]
        in_zone = orgs.filter(time_zone=tz)
        clean = set(
            RollupHour.objects.filter(
                organization__in=in_zone,
                day__gte=today - timedelta(days=1),
                time_zone=zone,
                dirty=False,
                computed_at__isnull=False,
            ).values_list("organization_id", "day", "hour")
        )
        for org_id in in_zone.values_list("pk", flat=True):
            due.update((org_id, day, n) for day, n in slots if (org_id, day, n) not in clean)
        dirty = RollupHour.objects.filter(
            organization__in=in_zone, dirty=True, day__gte=today - timedelta(days=HOUR_DAYS)
        ).values_list("organization_id", "day", "hour")
        for org_id, day, n in dirty:
            hours = local_hours(day, tz=zone)
            if n < len(hours) and hours[n][1] <= settled:
                due.add((org_id, day, n))
    return sorted(due)


def rollup_hours_prune(*, now: datetime | None = None) -> int:
    """Delete the hour rollups (rows and states) of days older than every organization's
    HOUR_DAYS (readers have stopped using them); returns the states deleted."""
    now = now or timezone.now()
    # UTC's date minus one more day is at or before every zone's date minus HOUR_DAYS.
    oldest = now.astimezone(ZoneInfo("UTC")).date() - timedelta(days=HOUR_DAYS + 2)
    for kind in KINDS:
        kind.model._default_manager.filter(hour__isnull=False, day__lt=oldest).delete()
    aggregates_prune(before=datetime.combine(oldest, datetime.min.time(), tzinfo=ZoneInfo("UTC")))
    deleted, _ = RollupHour.objects.filter(day__lt=oldest).delete()
    return deleted
