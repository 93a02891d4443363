# ruff: noqa: S608 - the SQL is built from model metadata and constants; values are parameters
"""Bucket aggregates kept current at ingestion: the rollup tables' figures per bucket.

Each table (JobBucket, QueryBucket with its detail, model, endpoint and member rows,
WorkerBucket, MatchingBucket; rollups/models.py) holds per organization, bucket and the
rollup tables' dimensions what the raw records of that bucket sum to. Buckets are
USAGE_BUCKET_SECONDS wide (one minute by default) and aligned to the Unix epoch, so every
time zone's hours and days are whole buckets (zone offsets are multiples of 15 minutes).

**Kept current in the writer's transaction.** `aggregates_add` is one statement per
table, SELECT … GROUP BY … over the rows just written (the batch's records by batch id;
moved jobs by id) added to the bucket rows (PostgreSQL: a MERGE; SQLite: INSERT … ON
CONFLICT DO UPDATE; rollups/services/bucket_sql.py): the organization's row lock the batch
already holds serializes it with every other writer of the organization, so it adds no
contention, and a fault anywhere rolls the figures back with the records. A job's status
move subtracts its stored figures (same statement, negated) before the update and adds
the new ones after it. Worker sessions are spread over every bucket they overlap
(runtime clipped to the bucket; carried in where the session started before it).

**Horizon.** Buckets are kept for the organization's last HOUR_DAYS days (from the first
instant of its day HOUR_DAYS before today): older records (a very late arrival) are not
added, and readers read such intervals raw until the rollup recomputes the day (see
rollups/selectors/coverage.py). `aggregates_prune` drops older buckets with the hour rows.

**Verifier.** The rollups recompute a day's (and an hour's) buckets from the raw records
(`aggregates_rebuild`): compare, rewrite, and record what differed as a Restatement of
kind "buckets". After any sequence of ingests and job moves it finds nothing to change.

**Edges.** A reader's range edge inside a bucket is moved to the bucket's end: a bucket
belongs to a range when its first instant is in it, so adjacent ranges share no bucket
and a window ending now includes the open bucket whole (records up to its end). With
one-minute buckets, figures are exact to the minute.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Model, QuerySet
from django.utils import timezone

from accounts.models import Organization
from core.calendar import local_day_start, org_today
from rollups.models import (
    JobBucket,
    MatchingBucket,
    QueryBucket,
    Restatement,
    WorkerBucket,
)
from rollups.services.bucket_sql import (
    job_bucket_sql,
    matching_bucket_sql,
    pg_in_use,
    query_bucket_sql,
    worker_bucket_sql_pg,
    worker_bucket_sql_sqlite,
)
from usage.models import Job, MatchingRun, Query, WorkerSession

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BUCKET_TABLES = (JobBucket, QueryBucket, WorkerBucket, MatchingBucket)
# Buckets and hour rollups are kept for the open day and this many days before it: the
# sliding windows (24 hours, 7 and 30 days) start mid-day up to 30 days back (31 across
# a DST change), and their partial first day is read hour by hour or bucket by bucket.
HOUR_DAYS = 32


def buckets_enabled() -> bool:
    return bool(settings.USAGE_BUCKETS)


def bucket_seconds() -> int:
    width = int(settings.USAGE_BUCKET_SECONDS)
    if width <= 0 or 900 % width:
        raise ValueError("USAGE_BUCKET_SECONDS must divide 900 (15 minutes)")
    return width


def bucket_floor(moment: datetime, width: int | None = None) -> datetime:
    width = width or bucket_seconds()
    seconds = (moment - EPOCH) // timedelta(seconds=width) * width
    return EPOCH + timedelta(seconds=seconds)


def bucket_ceil(moment: datetime, width: int | None = None) -> datetime:
    floor = bucket_floor(moment, width)
    if floor == moment:
        return floor
    try:
        return floor + timedelta(seconds=width or bucket_seconds())
    except OverflowError:  # the last minute representable: its end is the end of time
        return moment


def buckets_horizon(*, org: Organization, now: datetime | None = None) -> datetime:
    """The first instant the organization's buckets are kept (and complete) from."""
    tz = org.time_zone or "UTC"
    return local_day_start(org_today(org, now=now) - timedelta(days=HOUR_DAYS), tz=tz)


# --- Writes ----------------------------------------------------------------------------

FAR = datetime(9999, 1, 1, tzinfo=UTC)


# A MERGE joins the rows to add to the bucket table. The planner cannot know how many
# rows a batch adds (it guesses one to a few hundred; a batch brings thousands), and on
# that guess it chose to scan the organization's buckets once per row to add, or to hash
# all of them. Each row's match is one probe of the dimensions' unique index, so the
# upserts run with that plan pinned (nested loop, index scan), for them alone.
_INDEX_JOIN = ("enable_hashjoin", "enable_mergejoin", "enable_seqscan")
_PLANNER_SET = "SELECT " + ", ".join(f"set_config('{name}', %s, true)" for name in _INDEX_JOIN)


@contextmanager
def _index_joins() -> Iterator[None]:
    if not pg_in_use():
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(_PLANNER_SET, ["off"] * len(_INDEX_JOIN))
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(_PLANNER_SET, ["on"] * len(_INDEX_JOIN))


def _execute(sql: str, params: list) -> None:
    if not pg_in_use():  # SQLite compares stored text: naive UTC, as Django writes it
        adapt = connection.ops.adapt_datetimefield_value
        params = [adapt(p) if isinstance(p, datetime) else p for p in params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


_TABLES = {
    "job": Job._meta.db_table,
    "query": Query._meta.db_table,
    "worker_session": WorkerSession._meta.db_table,
    "matching": MatchingRun._meta.db_table,
}
# The time each kind's raw table is partitioned by (month partitions, PostgreSQL).
_PARTITIONED_BY = {
    "job": "submitted_at",
    "query": "occurred_at",
    "worker_session": "started_at",
    "matching": "started_at",
}
# What a rebuild of [lo, hi) reads, by kind (with the organization and lo, hi).
_RANGES = {
    "job": "organization_id = %s AND submitted_at >= %s AND submitted_at < %s",
    "query": "organization_id = %s AND occurred_at >= %s AND occurred_at < %s",
    "worker_session": "organization_id = %s AND (ended_at > %s OR started_at >= %s) "
    "AND started_at < %s",
    "matching": "organization_id = %s AND started_at >= %s AND started_at < %s",
}


def _statement(
    kind: str,
    org: Organization,
    where: str,
    where_params: list,
    lo: datetime,
    hi: datetime,
    sign: str = "",
) -> tuple[str, str, list]:
    """The selection of `kind`'s records by `where` (a CTE's body), the upsert of their
    figures into `kind`'s buckets reading it as `b` (PostgreSQL: a MERGE), and their
    parameters in order."""
    width = bucket_seconds()
    selection = f"SELECT * FROM {_TABLES[kind]} WHERE {where}"
    if kind == "worker_session" and not pg_in_use():
        sql = worker_bucket_sql_sqlite(width)
        return selection, sql, [*where_params, lo, hi, org.pk, lo, lo, hi]
    if kind == "job":
        upsert, params = job_bucket_sql(sign, width), [org.pk, lo, hi]
    elif kind == "query":
        upsert, params = query_bucket_sql(width), [org.pk, lo, hi] * 4
    elif kind == "matching":
        upsert, params = matching_bucket_sql(width), [org.pk, lo, hi]
    else:
        upsert, params = worker_bucket_sql_pg(width), [lo, hi, org.pk, lo, lo, hi]
    if pg_in_use():
        return selection, upsert.merge(), [*where_params, *params]
    return selection, upsert.sql(), [*where_params, *params]


def _run(
    kind: str,
    org: Organization,
    where: str,
    where_params: list,
    lo: datetime,
    hi: datetime,
    sign: str = "",
):
    """One upsert into `kind`'s buckets of its records selected by `where` (the batch's,
    some ids, or a range), counted within [lo, hi).

    The selected rows are materialized first, so the planner looks them up by the
    selection's own index (a batch id, primary keys) rather than by the organization's
    time index with the selection as a filter (which reads every record since `lo`).
    """
    selection, sql, params = _statement(kind, org, where, where_params, lo, hi, sign)
    recursive = "RECURSIVE " if kind == "worker_session" and not pg_in_use() else ""
    cte = f"WITH {recursive}b AS MATERIALIZED ({selection})"
    separator = "" if sql.startswith(",") else " "
    _execute(cte + separator + sql, params)


def _run_all(org: Organization, parts: list[tuple[str, str, list]], lo, hi, sign: str = ""):
    """Several upserts (kind, where, its parameters), each kind's its own statement (a
    MERGE cannot be a CTE in PostgreSQL 15), under one pinned plan setting."""
    with _index_joins():
        for kind, where, where_params in parts:
            _run(kind, org, where, where_params, lo, hi, sign)


def _range_params(kind: str, org: Organization, lo: datetime, hi: datetime) -> list:
    return [org.pk, lo, lo, hi] if kind == "worker_session" else [org.pk, lo, hi]


def aggregates_add(
    *,
    org: Organization,
    batch_id: int | None = None,
    kinds: tuple[str, ...] = ("job", "query", "worker_session", "matching"),
    job_ids: list[int] | None = None,
    now: datetime | None = None,
    spans: dict[str, tuple[datetime, datetime]] | None = None,
) -> None:
    """Add a batch's new records of `kinds` (and the jobs `job_ids`, after a move) to
    their buckets inside the caller's transaction, one upsert per kind. `spans` may give,
    by kind, the first and last time (the partition column's) of the batch's new records:
    the selection then names only the month partitions holding them, instead of asking
    every month's."""
    if not buckets_enabled():
        return
    lo = buckets_horizon(org=org, now=now)
    spans = spans or {}
    parts: list[tuple[str, str, list]] = []
    for kind in kinds:
        if kind == "job" and job_ids:
            marks = ", ".join(["%s"] * len(job_ids))
            if batch_id is None:
                parts.append((kind, f"id IN ({marks})", list(job_ids)))
            else:
                parts.append((kind, f"batch_id = %s OR id IN ({marks})", [batch_id, *job_ids]))
        elif batch_id is not None and kind in spans and pg_in_use():
            column = _PARTITIONED_BY[kind]
            first, last = spans[kind]
            where = f"batch_id = %s AND {column} >= %s AND {column} <= %s"
            parts.append((kind, where, [batch_id, first, last]))
        elif batch_id is not None:
            parts.append((kind, "batch_id = %s", [batch_id]))
    _run_all(org, parts, lo, FAR)


def aggregates_jobs_subtract(
    *, org: Organization, job_ids: list[int], now: datetime | None = None
) -> None:
    """Take jobs' stored figures off their buckets (before a status move rewrites them)."""
    if not buckets_enabled() or not job_ids:
        return
    lo = buckets_horizon(org=org, now=now)
    marks = ", ".join(["%s"] * len(job_ids))
    _run_all(org, [("job", f"id IN ({marks})", list(job_ids))], lo, FAR, sign="-")


def aggregates_records_add(*, org: Organization, kind: str, ids: list[int]) -> None:
    """Add records written outside ingestion (tests' factories, imports) by primary key.
    Unlike ingestion it takes no lock: the MERGE fails, rather than merges, beside a
    concurrent writer of the same buckets, so a concurrent caller holds
    `organization_usage_lock` first."""
    if not buckets_enabled() or not ids:
        return
    marks = ", ".join(["%s"] * len(ids))
    _run_all(org, [(kind, f"id IN ({marks})", list(ids))], buckets_horizon(org=org), FAR)


def _bucket_rows(
    model: type[Model], org: Organization, lo: datetime, hi: datetime
) -> QuerySet[Model]:
    """The organization's rows of a bucket table in [lo, hi) that carry figures."""
    rows = model._default_manager.filter(organization_id=org.pk, bucket__gte=lo, bucket__lt=hi)
    if model is JobBucket:  # rows a job's move left at zero are no figures
        rows = rows.exclude(submitted=0)
    return rows


def _snapshot(org: Organization, lo: datetime, hi: datetime) -> set[tuple]:
    rows: set[tuple] = set()
    for model in BUCKET_TABLES:
        names = [f.attname for f in model._meta.concrete_fields if not f.primary_key]
        for values in _bucket_rows(model, org, lo, hi).values_list(*names):
            rows.add((model.__name__, *values))
    return rows


def aggregates_rebuild(
    *, org: Organization, lo: datetime, hi: datetime, now: datetime | None = None
) -> int:
    """Recompute the buckets of [lo, hi) (aligned) from the raw records, inside the
    caller's transaction; record a restatement when they differed. Returns the rows that
    differed (0: ingestion kept them exact)."""
    if not buckets_enabled():
        return 0
    lo = max(lo, buckets_horizon(org=org, now=now))
    if hi <= lo:
        return 0
    before = _snapshot(org, lo, hi)
    for model in BUCKET_TABLES:
        model.objects.filter(organization_id=org.pk, bucket__gte=lo, bucket__lt=hi).delete()
    kinds = ("job", "query", "worker_session", "matching")
    _run_all(org, [(k, _RANGES[k], _range_params(k, org, lo, hi)) for k in kinds], lo, hi)
    differing = before ^ _snapshot(org, lo, hi)
    if differing:
        Restatement.objects.create(
            organization_id=org.pk,
            day=lo.astimezone(UTC).date(),
            kind="buckets",
            dimension={"start": lo.isoformat(), "end": hi.isoformat()},
            before={"rows": len(before)},
            after={"differing": len(differing)},
            restated_at=now or timezone.now(),
        )
        logger.warning(
            "usage.buckets.restated",
            extra={"org": org.pk, "start": lo.isoformat(), "rows": len(differing)},
        )
    return len(differing)


def aggregates_prune(*, before: datetime) -> int:
    """Delete every organization's buckets older than `before`; returns rows deleted."""
    deleted = 0
    for model in BUCKET_TABLES:
        count, _ = model.objects.filter(bucket__lt=before).delete()
        deleted += count
    return deleted
