"""Day rollups: one organization's calendar day recomputed in one transaction (its
hours and buckets with it), and the sweep's list of days due."""

import logging
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import models, transaction
from django.utils import timezone

from accounts.models import Organization
from core.calendar import local_day_range, local_hours, org_today
from rollups.models import Restatement, RollupState
from rollups.services.aggregates import HOUR_DAYS, aggregates_rebuild
from rollups.services.build import (
    KINDS,
    RollupResult,
    interval_insert,
    restatements_record,
    rollup_snapshot,
)
from rollups.services.hours import hours_rebuild_locked, rollup_hour, rollup_hours_due
from usage.locks import organization_usage_lock
from usage.services.retention import retention_day_frozen

logger = logging.getLogger(__name__)


# Re-zoned days recomputed per sweep (a zone change re-buckets the whole history).
REZONE_BATCH = 400


def _day_state_locked(org: Organization, day: date, now: datetime) -> RollupState:
    """The day's state row, made if missing and locked: the organization's usage lock
    first (ingestion's order), then the lock per org-day (see the module docstring)."""
    RollupState.objects.bulk_create(
        [RollupState(organization_id=org.pk, day=day, dirty=True, dirtied_at=now)],
        ignore_conflicts=True,
    )
    organization_usage_lock(org)
    return RollupState.objects.select_for_update().get(organization_id=org.pk, day=day)


def _day_rows_replace(
    org: Organization, day: date, lo: datetime, hi: datetime, *, restate: bool, now: datetime
) -> tuple[int, list[Restatement]]:
    """Replace the day's whole-day rows by those of its records in [lo, hi): (rows, the
    restatements recorded when `restate` and the figures changed)."""
    before = rollup_snapshot(org, day) if restate else None
    for kind in KINDS:
        kind.model._default_manager.filter(organization_id=org.pk, day=day, hour=None).delete()
    rows = interval_insert(org, day, None, lo, hi)
    restated: list[Restatement] = []
    if before is not None:
        restated = restatements_record(org, day, before, rollup_snapshot(org, day), now)
        Restatement.objects.bulk_create(restated)
    return rows, restated


@transaction.atomic
def rollup_day(*, org: Organization, day: date) -> RollupResult:
    """Recompute one closed day of the organization's rollups; the same rows every time.

    Raises ValueError for the open day (or a future one): only closed days roll up.
    """
    started = time.monotonic()
    tz = org.time_zone or "UTC"
    now = timezone.now()
    if day >= org_today(org, now=now):
        raise ValueError(f"{day} is not closed yet in {tz}; only past days roll up")
    if retention_day_frozen(org=org, day=day):  # its raw records are gone: rows are final
        return RollupResult(day=day, rows=0, restatements=0, duration_ms=0)
    state = _day_state_locked(org, day, now)
    restate = state.computed_at is not None and state.time_zone == tz
    lo, hi = local_day_range(day, tz=tz)
    rows, restated = _day_rows_replace(org, day, lo, hi, restate=restate, now=now)
    hour_rows = 0
    if day >= org_today(org, now=now) - timedelta(days=HOUR_DAYS):
        # The day's hours too, for the windows whose partial first day this is.
        slots = local_hours(day, tz=tz)
        hour_rows = hours_rebuild_locked(
            org=org, day=day, hours=list(range(len(slots))), tz=tz, now=now
        )
    # The bucket aggregates of the day (those kept) verified and rebuilt from the records.
    bucket_rows = aggregates_rebuild(org=org, lo=lo, hi=hi, now=now)
    duration_ms = round((time.monotonic() - started) * 1000)
    state.dirty = False
    state.time_zone = tz
    state.computed_at = now
    state.rows = rows
    state.duration_ms = duration_ms
    state.save(update_fields=["dirty", "time_zone", "computed_at", "rows", "duration_ms"])
    logger.info(
        "usage.rollup.day",
        extra={
            "org": org.pk,
            "day": day.isoformat(),
            "rows": rows,
            "restatements": len(restated),
            "hour_rows": hour_rows,
            "duration_ms": duration_ms,
        },
    )
    return RollupResult(
        day=day,
        rows=rows,
        restatements=len(restated),
        duration_ms=duration_ms,
        hour_rows=hour_rows,
        bucket_rows_restated=bucket_rows,
    )


def rollup_due(*, now: datetime | None = None) -> list[tuple[int, date]]:
    """(organization id, day) pairs to recompute: every organization's previous day in its
    own zone unless already clean, days marked dirty, and days computed in another zone
    than the organization's current one (a batch of them per sweep)."""
    now = now or timezone.now()
    due: set[tuple[int, date]] = set()
    zones = Organization.objects.values_list("time_zone", flat=True).distinct().order_by()
    for tz in zones:
        yesterday = now.astimezone(ZoneInfo(tz or "UTC")).date() - timedelta(days=1)
        clean = RollupState.objects.filter(
            organization=models.OuterRef("pk"), day=yesterday, dirty=False
        )
        for org_id in (
            Organization.objects.filter(time_zone=tz)
            .exclude(models.Exists(clean))
            .values_list("pk", flat=True)
        ):
            due.add((org_id, yesterday))
    due.update(RollupState.objects.filter(dirty=True).values_list("organization_id", "day"))
    rezoned = (
        RollupState.objects.filter(computed_at__isnull=False)
        .exclude(time_zone=models.F("organization__time_zone"))
        .order_by("-day")
        .values_list("organization_id", "day")[:REZONE_BATCH]
    )
    due.update(rezoned)
    tz_of = dict(
        Organization.objects.filter(pk__in={org_id for org_id, _ in due}).values_list(
            "pk", "time_zone"
        )
    )
    return sorted(
        (org_id, day)
        for org_id, day in due
        if org_id in tz_of and day < now.astimezone(ZoneInfo(tz_of[org_id] or "UTC")).date()
    )


def rollup_catch_up(*, org: Organization, now: datetime | None = None) -> int:
    """Roll up the organization's due days now, in-process (the demo, after an import);
    returns how many days were recomputed."""
    due = [day for org_id, day in rollup_due(now=now) if org_id == org.pk]
    for day in due:
        rollup_day(org=org, day=day)
    for _org_id, day, hour in rollup_hours_due(now=now, org=org):
        rollup_hour(org=org, day=day, hour=hour)
    return len(due)
