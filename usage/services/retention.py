"""Retention of raw usage records: drop whole months once their days live in rollups.

`usage_retention_run(keep_months=N)` keeps the current month and the N full months
before it, and for each older monthly partition (oldest first) checks that its
organizations' days are rolled up and reconciled, then detaches and drops the month's
partitions of all four record tables (a catalog change: well under a second whatever
their size) and records the month in RetainedMonth. It stops at the first month that
is not ready, so the dropped months are always all those before one horizon.

After a drop:
- ids stay in usage_recordkey, so a replay of a dropped record is still a duplicate;
- a new record whose organization-local day starts before the horizon is refused
  (ingestion: `retention_refusal`), and the rollups never recompute such a day
  (`retention_day_frozen`): its rollup rows are now the only copy of its figures;
- pages read those days from rollups as before; per-record lists, CSVs and the API say
  that detail before the horizon is no longer kept (`retention_notice`).

PostgreSQL only: SQLite has no partitions and the command does nothing there.
"""

import logging
import time
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Organization
from usage.models import PARTITION_COLUMNS, TERMINAL_JOB_STATUSES, RetainedMonth
from usage.services.partitions import (
    month_add,
    month_first,
    month_start,
    partition_name,
    partitions_enabled,
    partitions_of,
)

logger = logging.getLogger(__name__)

# The hour rollups and bucket aggregates of the last HOUR_DAYS (32) days are rebuilt from
# raw records by the verifier: two full months plus the current one keep them all raw.
MIN_KEEP_MONTHS = 2


# The horizon ------------------------------------------------------------------------------


def retention_horizon() -> datetime | None:
    """The first instant (UTC) whose raw records are still kept; None: nothing dropped."""
    last = RetainedMonth.objects.order_by("-month").values_list("month", flat=True).first()
    return month_start(month_add(last, 1)) if last is not None else None


def retention_org_horizon(horizon: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first local midnight at or after the horizon: the organization's first day
    whose every instant is still kept raw (a day straddling the horizon is frozen)."""
    local = horizon.astimezone(zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    if midnight < local:
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), zone)
    return midnight


_TIME_FIELDS = {
    "query": "occurred_at",
    "worker_session": "started_at",
    "matching": "started_at",
    "job": "submitted_at",
}


def retention_ingest_horizon(
    candidates, *, zone: zoneinfo.ZoneInfo, now: datetime
) -> datetime | None:
    """The organization's horizon if any candidate record could fall before it, else
    None. Retention always keeps last month, so a batch whose records are all from this
    month or last costs no query."""
    safe_from = month_start(month_add(month_first(now), -1))
    times = [_time_of(c.kind, c.values) for by_id in candidates.values() for c in by_id.values()]
    if all(t is None or t >= safe_from for t in times):
        return None
    horizon = retention_horizon()
    return retention_org_horizon(horizon, zone) if horizon is not None else None


def _time_of(kind: str, values: dict) -> datetime | None:
    return values.get(_TIME_FIELDS[kind]) or values.get("started_at")


def retention_refusal(kind: str, values: dict, horizon: datetime | None) -> tuple[str, str] | None:
    """(field, error) for a new record on a day whose raw records were dropped, else None."""
    moment = _time_of(kind, values)
    if horizon is None or moment is None or moment >= horizon:
        return None
    return (
        _TIME_FIELDS[kind],
        f"is before {horizon.isoformat()}: usage before then is kept as daily totals only "
        "(per-record detail is no longer kept), so new records for it are not accepted",
    )


def retention_day_frozen(*, org: Organization, day: date) -> bool:
    """Whether the organization's local day starts before the horizon: its raw records
    are (partly) gone, so its rollup rows must never be recomputed from them."""
    horizon = retention_horizon()
    if horizon is None:
        return False
    zone = zoneinfo.ZoneInfo(org.time_zone or "UTC")
    return datetime.combine(day, datetime.min.time(), zone) < retention_org_horizon(horizon, zone)


def retention_notice(*, start: datetime | None) -> str | None:
    """What per-record lists, CSVs and the API say when a range starts before the
    horizon (None: every record of the range is still kept)."""
    # Retention always keeps last month: a range starting since then needs no query.
    if start is not None and start >= month_start(month_add(month_first(timezone.now()), -1)):
        return None
    horizon = retention_horizon()
    if horizon is None or (start is not None and start >= horizon):
        return None
    return (
        f"Per-record detail before {horizon:%Y-%m-%d} (UTC) is no longer kept; totals for "
        "those days come from daily rollups."
    )


# Dropping months ---------------------------------------------------------------------------


@dataclass
class MonthVerdict:
    month: date
    ready: bool = False
    reasons: list[str] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)
    dropped: bool = False
    check_ms: float = 0.0
    detach_ms: float = 0.0
    drop_ms: float = 0.0


def _zone_sql() -> str:
    return "coalesce(nullif(o.time_zone, ''), 'UTC')"


def _unrolled_days(partition: str, table: str, column: str) -> int:
    """(organization, local day) pairs with records in the partition whose day is not
    clean in RollupState (never rolled up, dirty, computed in another zone, or with a
    rollup reconciliation issue found since its last computation)."""
    if table == "usage_workersession":  # a session counts on every day it ran
        days = (
            f"generate_series(({column} AT TIME ZONE {_zone_sql()})::date, "
            f"(ended_at AT TIME ZONE {_zone_sql()})::date, interval '1 day')::date"
        )
    else:
        days = f"({column} AT TIME ZONE {_zone_sql()})::date"
    sql = f"""
        SELECT count(*) FROM (
            SELECT DISTINCT r.organization_id, {days} AS day, {_zone_sql()} AS zone
            FROM {partition} AS r JOIN accounts_organization AS o ON o.id = r.organization_id
        ) AS d
        LEFT JOIN usage_rollupstate AS s ON s.organization_id = d.organization_id
            AND s.day = d.day AND NOT s.dirty AND s.computed_at IS NOT NULL
            AND s.time_zone = d.zone
            AND NOT EXISTS (
                SELECT 1 FROM billing_reconciliationissue AS i
                WHERE i.organization_id = s.organization_id AND i.kind = 'rollup'
                  AND i.day = s.day AND i.detected_at >= s.computed_at)
        WHERE s.id IS NULL
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def _month_check(month: date, partitions: dict[str, str]) -> MonthVerdict:
    """Whether the month's partitions may go, with the reasons they may not."""
    started = time.monotonic()
    verdict = MonthVerdict(month=month)
    end = month_start(month_add(month, 1))
    with connection.cursor() as cursor:
        for table, partition in partitions.items():
            cursor.execute(f"SELECT count(*) FROM {partition}")  # noqa: S608
            verdict.records[table] = cursor.fetchone()[0]
            unrolled = _unrolled_days(partition, table, PARTITION_COLUMNS[table])
            if unrolled:
                verdict.reasons.append(
                    f"{table}: {unrolled} organization-days not rolled up and reconciled"
                )
        if "usage_job" in partitions:
            cursor.execute(
                f"SELECT count(*) FROM {partitions['usage_job']} "  # noqa: S608
                "WHERE NOT (status = ANY(%s))",
                [list(TERMINAL_JOB_STATUSES)],
            )
            live = cursor.fetchone()[0]
            if live:
                verdict.reasons.append(f"{live} jobs still submitted or running")
        if "usage_workersession" in partitions:
            cursor.execute(
                f"SELECT count(*) FROM {partitions['usage_workersession']} "  # noqa: S608
                "WHERE ended_at >= %s",
                [end],
            )
            carried = cursor.fetchone()[0]
            if carried:
                verdict.reasons.append(
                    f"{carried} worker sessions run on into the next month (their later "
                    "days are still recomputed from them)"
                )
    verdict.ready = not verdict.reasons
    verdict.check_ms = (time.monotonic() - started) * 1000
    return verdict


def _month_drop(verdict: MonthVerdict, partitions: dict[str, str]) -> None:
    """Detach the month's partitions and record the month in one transaction (the only
    step that locks the record tables), then drop the detached tables (which no query
    reaches any more: dropping a gigabyte takes a moment, and blocks nobody)."""
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        # Detaching locks each parent table for a moment; wait at most this long behind
        # running statements rather than stall every ingest queued behind us.
        cursor.execute("SET LOCAL lock_timeout = '10s'")
        # Deferred foreign-key checks of rows written earlier in this transaction (a
        # caller's, or a test's) would keep the partitions from being dropped: run them.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table, partition in partitions.items():
            cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {partition}")
        RetainedMonth.objects.update_or_create(
            month=verdict.month, defaults={"records": verdict.records, "dropped_at": timezone.now()}
        )
    verdict.dropped = True
    verdict.detach_ms = (time.monotonic() - started) * 1000
    _detached_drop([verdict.month])
    verdict.drop_ms = (time.monotonic() - started) * 1000 - verdict.detach_ms


def _detached_drop(months) -> None:
    """Drop the detached partitions of retained months (also what a run that stopped
    between detaching and dropping left behind)."""
    with connection.cursor() as cursor:
        for month in months:
            for table in PARTITION_COLUMNS:
                cursor.execute(f"DROP TABLE IF EXISTS {partition_name(table, month)}")


def _months_due(keep_months: int, now: datetime) -> dict[date, dict[str, str]]:
    """Months older than the kept ones, oldest first: {month: {table: partition}}."""
    cutoff = month_add(month_first(now), -keep_months)
    due: dict[date, dict[str, str]] = {}
    for table in PARTITION_COLUMNS:
        for partition in partitions_of(table):
            if partition.month is not None and partition.month < cutoff:
                due.setdefault(partition.month, {})[table] = partition.name
    return dict(sorted(due.items()))


def usage_retention_run(
    *, keep_months: int, now: datetime | None = None, dry_run: bool = False
) -> list[MonthVerdict]:
    """Drop the raw records of months before the last `keep_months` full months (and the
    current one) that are rolled up and reconciled, oldest first, stopping at the first
    that is not; returns a verdict per month looked at."""
    if keep_months < MIN_KEEP_MONTHS:
        raise ValueError(f"keep at least {MIN_KEEP_MONTHS} full months")
    if not partitions_enabled():
        return []
    if not dry_run:
        _detached_drop(RetainedMonth.objects.values_list("month", flat=True))
    verdicts = []
    for month, partitions in _months_due(keep_months, now or timezone.now()).items():
        verdict = _month_check(month, partitions)
        verdicts.append(verdict)
        if not verdict.ready:
            break
        if not dry_run:
            _month_drop(verdict, partitions)
            logger.info(
                "usage.retention.dropped",
                extra={
                    "month": month.isoformat(),
                    "records": verdict.records,
                    "detach_ms": round(verdict.detach_ms, 1),
                    "drop_ms": round(verdict.drop_ms, 1),
                },
            )
    return verdicts
