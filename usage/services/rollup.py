"""Daily and hourly rollups: an organization's day (or finished hour) of usage records
summed per dimension.

Modelled on Zulip's analytics app (a state row per unit of work, counts built with
INSERT … SELECT … GROUP BY, idempotent refills), with one table per record kind:

- JobDaily per (API key, controller): jobs submitted that day by status, core-hours,
  credits, what failed and cancelled jobs wasted, the last submission time;
- QueryDaily: queries, tokens in/out, credits per (model, API key, endpoint, member)
  ("detail" rows), and per model, per endpoint and per member (summed from the detail
  rows), so a figure by one dimension reads a few rows a day whatever the cardinality
  of the others;
- WorkerDaily per (model, API key): runtime clipped to the day, sessions started that
  day, sessions carried in (already running at its first instant), credits;
- MatchingDaily per (task, API key): runs, records matched, run time.

A day is the organization's calendar day in its time zone, recorded in RollupState so a
changed zone is seen (such days read raw until recomputed; the sweep recomputes them).

**Idempotent, crash-safe.** `rollup_day` recomputes one org-day in one transaction: lock
the day's state row (SELECT … FOR UPDATE), delete the day's rows, insert them again from
the records with four INSERT … SELECT … GROUP BY statements, mark the state clean. A
worker killed part-way aborts the transaction, so the day keeps its previous rows (and
its dirty flag) and the retry computes the same rows a clean run does. The row lock is
the lock per org-day: two runs for the same day queue behind each other, and ingestion
marking the day dirty waits for a running recompute to commit, then sets the flag
again, so a late record is never lost between the SELECT and the state update.

**Hour rollups (closed intervals finer than a day).** The same four tables also hold
hour rows (`hour` set: the hour counted from the local day's first instant, 23 to 25 of
them a day, the last cut at the day's end; whole-day rows have hour NULL, and the two
kinds are indexed apart), each finished hour of an org-day with its own state row
(RollupHour: clean or dirty, zone; its row lock is the lock per org-hour, taken in hour
order). `rollup_hour` recomputes one finished hour (delete and insert in one
transaction, like a day); the beat's `rollup_hours_sweep` enqueues it every five minutes
for each organization's finished hours of its open and previous day not clean yet (an
hour is due HOUR_SETTLE after it ends) and for dirty hours. `rollup_day` rebuilds its
day's hours with the day when the day is among the last HOUR_DAYS (32): one more
INSERT … SELECT per kind grouped by hour as well (a CASE on the record's time), worker
sessions one statement per hour they overlap. Hour rows of older days are pruned by the
sweep. Readers (usage/coverage.py) take whole clean days from day rows and, wherever
whole clean hours fit in the rest, hour rows: the open day's finished hours and the
partial first day of a sliding window (24 hours, 7 and 30 days start mid-day). So a
page reads raw only the current hour, a window's partial first hour, and dirty hours.
Ingestion marks dirty, in its transaction and in one upsert, the finished hours its
records land on (a worker session: every hour it overlaps), as it does closed days; a
job's status move marks its submission hour. An hour rolled up while an ingestion that
began before the hour's end is still open could miss that ingestion's records (it did
not mark the hour, which had not ended); HOUR_SETTLE (5 minutes) rules that out for any
ingestion transaction shorter than that. Hour rows are not restated (days are).

**Bucket aggregates (usage/services/aggregates.py).** Ingestion keeps per-minute
aggregates current in its transaction; readers take from them whatever day and hour rows
leave. `rollup_day` and `rollup_hour` are their verifier: they recompute the day's (or
hour's) buckets from the records in the same transaction, and a difference is rewritten
and recorded as a Restatement of kind "buckets" (RollupResult.bucket_rows_restated);
`rollup_hours_prune` drops buckets with the hour rows past HOUR_DAYS.

**Late records and job moves.** Ingestion marks a closed day dirty (RollupState.dirty)
when a record lands on it, and a job's status move marks its submission day (and hour)
dirty (a rollup row holds statuses as of its computation). Selectors read dirty days
(and hours) from the raw records until the next run, so figures stay exact in between;
the hourly sweep recomputes dirty days, the five-minute one dirty hours. When a
recomputation changes a day that had been computed, the change is kept as Restatement
rows (one per changed dimension, figures before and after).

**Partitioning (PostgreSQL): not partitioned.** Measured with `manage.py bench_rollup`
on 10 million records of one organization (9M queries, usage_query 2.8 GB with its
indexes; 2 cores): a young open day's aggregate through the (organization, occurred_at)
index takes 0.4-2 ms; rolling up a day of 1 million records takes 1.0 s with the rows
in random physical order and 0.2 s once clustered by time (as ingestion stores them),
and the 90-day backfill 34 s / 8 s. Those index range scans cost what the day holds,
not what the table holds, so monthly partitions would not make them faster; and
PostgreSQL cannot enforce the (organization, client_id) uniqueness that makes replays
idempotent across partitions unless the partition key joins the constraint, which would
let a replayed id with another time be stored twice. Revisit when dropping old months
wholesale is wanted.

**Measured with hour rollups** (`manage.py bench_rollup`, 10 million records against
10 thousand, ~110k records a day, 2 shared cores; p95 page time at 10M / at 10k).
Before them the open day was read raw: 1.3-1.4 just after midnight but 6-33 in the
afternoon (~110k records by then, scanned once per figure, plus up to half a day of a
sliding window's first day). With them, in the organization's afternoon (zone UTC+14,
15:1x-15:2x, 15 finished hours rolled up): usage panel 1.19, main page 1.15 with the
records in random physical order; 1.09 and 1.02 clustered by time. Just after midnight
(UTC, 01:1x-01:2x): 1.30 / 1.13 random, 1.07 / 1.03 clustered. Page p50 at 10M: 69-89 ms
(panel; 65-74 ms at 10k), 47-64 ms (main page). Half of what first remained at 10M (a
panel ratio of 2.2 clustered) was PostgreSQL starting parallel workers, 10-15 ms a
figure, for these small UNION ALL aggregates: hence max_parallel_workers_per_gather=0
on the app's connections (console/settings.py). Rolling up the day of 1 million
records with its hours: 2.7 s in random order, 2.1 s clustered (rebuilding the hours one
statement per hour per kind took 9.6 s), a second run changing no row; the 90-day
backfill of the 10M organization 48-57 s / 25 s; one finished hour of the open day
~35-50 ms.
"""

import logging
import time
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models import Count, DateTimeField, DurationField, ExpressionWrapper, Max, Q, Sum
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from accounts.models import Organization
from usage.models import (
    Job,
    JobDaily,
    JobStatus,
    MatchingDaily,
    MatchingRun,
    Query,
    QueryDaily,
    QueryDimension,
    Restatement,
    RollupHour,
    RollupState,
    WorkerDaily,
    WorkerSession,
)
from usage.services.aggregates import aggregates_prune, aggregates_rebuild
from usage.services.retention import retention_day_frozen
from usage.windows import local_day_range, local_hours

logger = logging.getLogger(__name__)

ZERO = Decimal("0")
_FAILED = Q(status__in=[JobStatus.FAILED, JobStatus.CANCELLED])
# Re-zoned days recomputed per sweep (a zone change re-buckets the whole history).
REZONE_BATCH = 400
# Hour rollups are kept for the open day and this many days before it: the sliding
# windows (24 hours, 7 and 30 days) start mid-day up to 30 days back (31 across a DST
# change), and their partial first day is read hour by hour.
HOUR_DAYS = 32
# An hour is rolled up this long after it ends, so an ingestion transaction that began
# before the hour's end (and so did not mark it dirty) has committed by then.
HOUR_SETTLE = timedelta(minutes=5)


@dataclass(frozen=True)
class RollupKind:
    """One rollup table: its record model, dimension columns and figure columns."""

    name: str
    model: type[models.Model]
    dimensions: tuple[str, ...]
    figures: tuple[str, ...]


KINDS = (
    RollupKind(
        "job",
        JobDaily,
        ("api_key_id", "controller_id"),
        (
            "submitted",
            "completed",
            "running",
            "failed",
            "cancelled",
            "core_hours",
            "credits",
            "wasted_core_hours",
            "wasted_credits",
            "last_submitted_at",
        ),
    ),
    RollupKind(
        "query",
        QueryDaily,
        ("dimension", "model_id", "api_key_id", "endpoint", "member"),
        ("queries", "input_tokens", "output_tokens", "total_tokens", "credits"),
    ),
    RollupKind(
        "worker",
        WorkerDaily,
        ("model_id", "api_key_id"),
        ("sessions_started", "sessions_carried_in", "runtime", "credits"),
    ),
    RollupKind(
        "matching",
        MatchingDaily,
        ("task", "api_key_id"),
        ("runs", "num_records", "run_time_seconds"),
    ),
)


@dataclass(frozen=True)
class RollupResult:
    day: date
    rows: int
    restatements: int
    duration_ms: int
    # Rows of the day's hours rebuilt with it (within HOUR_DAYS), not counted in `rows`.
    hour_rows: int = 0
    # Bucket aggregate rows the recomputation found different (0: ingestion kept them).
    bucket_rows_restated: int = 0


def _sum(name: str, model: type[models.Model], **kwargs) -> Coalesce:
    return Coalesce(Sum(name, **kwargs), models.Value(0), output_field=model._meta.get_field(name))


def _const(org: Organization, day: date, hour: int | None) -> dict[str, models.Value]:
    const = {"r_organization_id": models.Value(org.pk), "r_day": models.Value(day)}
    if hour is not None:
        const["r_hour"] = models.Value(hour, output_field=models.PositiveSmallIntegerField())
    return const


def _bucket(field: str, slots: list[tuple[datetime, datetime]]) -> models.Case:
    """The hour of the day (an index into `slots`) a time within the day falls in."""
    whens = [
        models.When(**{f"{field}__lt": end}, then=models.Value(n))
        for n, (_start, end) in enumerate(slots[:-1])
    ]
    return models.Case(
        *whens, default=models.Value(len(slots) - 1), output_field=models.IntegerField()
    )


def _by_hour(queryset: models.QuerySet, field: str, slots, dimensions: tuple) -> models.QuerySet:
    """The records grouped by `dimensions`, and by hour when `slots` are given."""
    if slots is None:
        return queryset.values(*dimensions)
    return queryset.annotate(r_hour=_bucket(field, slots)).values(*dimensions, "r_hour")


def _selects(
    org: Organization,
    day: date,
    lo: datetime,
    hi: datetime,
    hour: int | None = None,
    slots: list[tuple[datetime, datetime]] | None = None,
) -> dict[str, Any]:
    """Per kind, the aggregate queryset whose rows are the rollup rows of [lo, hi): the
    day (hour None) or one of its hours; with the day's `slots`, the job, query and
    matching rows of every hour of the day at once (grouped by hour as well).

    Annotations are named r_<column>; constant columns (organization, day, hour) are
    Values, which add nothing to GROUP BY.
    """
    const = _const(org, day, hour)
    jobs = (
        _by_hour(
            Job.objects.filter(organization_id=org.pk, submitted_at__gte=lo, submitted_at__lt=hi),
            "submitted_at",
            slots,
            ("api_key_id", "controller_id"),
        )
        .annotate(
            **const,
            r_submitted=Count("id"),
            r_completed=Count("id", filter=Q(status=JobStatus.COMPLETED)),
            r_running=Count("id", filter=Q(status=JobStatus.RUNNING)),
            r_failed=Count("id", filter=Q(status=JobStatus.FAILED)),
            r_cancelled=Count("id", filter=Q(status=JobStatus.CANCELLED)),
            r_core_hours=_sum("core_hours", Job),
            r_credits=_sum("credits", Job),
            r_wasted_core_hours=_sum("core_hours", Job, filter=_FAILED),
            r_wasted_credits=_sum("credits", Job, filter=_FAILED),
            r_last_submitted_at=Max("submitted_at"),
        )
        .order_by()
    )
    queries = (
        _by_hour(
            Query.objects.filter(organization_id=org.pk, occurred_at__gte=lo, occurred_at__lt=hi),
            "occurred_at",
            slots,
            ("model_id", "api_key_id", "endpoint", "member"),
        )
        .annotate(
            **const,
            r_dimension=models.Value(QueryDimension.DETAIL),
            r_queries=Count("id"),
            r_input_tokens=_sum("input_tokens", Query),
            r_output_tokens=_sum("output_tokens", Query),
            r_total_tokens=_sum("total_tokens", Query),
            r_credits=_sum("credits", Query),
        )
        .order_by()
    )
    started_today = Q(started_at__gte=lo)
    clipped = ExpressionWrapper(
        Least("ended_at", models.Value(hi, output_field=DateTimeField()))
        - Greatest("started_at", models.Value(lo, output_field=DateTimeField())),
        output_field=DurationField(),
    )
    workers = (
        WorkerSession.objects.filter(
            # Overlapping the day, or starting on it (a zero-length session counts where
            # it starts); written as two index range scans (by end, by start).
            Q(ended_at__gt=lo, started_at__lt=hi) | Q(started_at__gte=lo, started_at__lt=hi),
            organization_id=org.pk,
        )
        .values("model_id", "api_key_id")
        .annotate(
            **const,
            r_sessions_started=Count("id", filter=started_today),
            r_sessions_carried_in=Count("id", filter=~started_today),
            r_runtime=Sum(clipped),
            r_credits=_sum("credits", WorkerSession, filter=started_today),
        )
        .order_by()
    )
    matching = (
        _by_hour(
            MatchingRun.objects.filter(
                organization_id=org.pk, started_at__gte=lo, started_at__lt=hi
            ),
            "started_at",
            slots,
            ("task", "api_key_id"),
        )
        .annotate(
            **const,
            r_runs=Count("id"),
            r_num_records=_sum("num_records", MatchingRun),
            r_run_time_seconds=_sum("run_time_seconds", MatchingRun),
        )
        .order_by()
    )
    return {"job": jobs, "query": queries, "worker": workers, "matching": matching}


def _query_dimensions(
    org: Organization, day: date, hour: int | None = None, every_hour: bool = False
) -> list:
    """Per model, endpoint and member: the day's (or hour's, or with `every_hour` each
    hour's) detail rows summed (a few hundred rows read, not the records again)."""
    detail = QueryDaily.objects.filter(
        organization_id=org.pk, dimension=QueryDimension.DETAIL, day=day
    )
    detail = detail.filter(hour__isnull=False) if every_hour else detail.filter(hour=hour)
    group = ("hour",) if every_hour else ()
    selects = []
    for dimension, column in (
        (QueryDimension.MODEL, "model_id"),
        (QueryDimension.ENDPOINT, "endpoint"),
        (QueryDimension.MEMBER, "member"),
    ):
        blanks = {
            f"r_{name}": models.Value("") for name in ("endpoint", "member") if name != column
        }
        selects.append(
            detail.values(column, *group)
            .annotate(
                **_const(org, day, hour),
                r_dimension=models.Value(dimension),
                **blanks,
                r_queries=Sum("queries"),
                r_input_tokens=Sum("input_tokens"),
                r_output_tokens=Sum("output_tokens"),
                r_total_tokens=Sum("total_tokens"),
                r_credits=Sum("credits"),
            )
            .order_by()
        )
    return selects


def _insert_select(kind: RollupKind, queryset: models.QuerySet) -> int:
    """INSERT INTO the kind's table SELECT the queryset's rows (one statement)."""
    connection = connections[DEFAULT_DB_ALIAS]
    compiler = queryset.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    table = kind.model._meta.db_table
    columns = []
    for _expression, _sql, alias in compiler.select:
        name = alias.removeprefix("r_")
        columns.append(kind.model._meta.get_field(name.removesuffix("_id")).column)
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {connection.ops.quote_name(table)} ({quoted}) {sql}", params)  # noqa: S608 - names from model metadata
        return cursor.rowcount


def _snapshot(org: Organization, day: date) -> dict[str, dict[tuple, dict]]:
    """The day's whole-day rollup rows per kind, keyed by their dimension values."""
    snapshot = {}
    for kind in KINDS:
        rows = kind.model.objects.filter(organization_id=org.pk, day=day, hour=None).values(
            *kind.dimensions, *kind.figures
        )
        snapshot[kind.name] = {
            tuple(row[d] for d in kind.dimensions): {f: row[f] for f in kind.figures}
            for row in rows
        }
    return snapshot


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _figures_json(figures: dict | None) -> dict | None:
    return None if figures is None else {k: _json(v) for k, v in figures.items()}


def _restatements(
    org: Organization, day: date, before: dict, after: dict, now: datetime
) -> list[Restatement]:
    changes = []
    for kind in KINDS:
        old, new = before[kind.name], after[kind.name]
        for key in sorted(set(old) | set(new), key=repr):
            if old.get(key) == new.get(key):
                continue
            changes.append(
                Restatement(
                    organization_id=org.pk,
                    day=day,
                    kind=kind.name,
                    dimension={
                        d.removesuffix("_id"): v for d, v in zip(kind.dimensions, key, strict=True)
                    },
                    before=_figures_json(old.get(key)),
                    after=_figures_json(new.get(key)),
                    restated_at=now,
                )
            )
    return changes


def org_today(org: Organization, *, now: datetime | None = None) -> date:
    """The organization's current (open) day in its time zone."""
    return (now or timezone.now()).astimezone(ZoneInfo(org.time_zone or "UTC")).date()


def organization_usage_lock(org: Organization) -> None:
    """Serialize what writes this organization's usage: ingestion, job moves and the
    rollups that rebuild its bucket aggregates. Always taken first, before any rollup
    state row, so the two never wait on each other in opposite orders (a deadlock)."""
    no_key = connections[DEFAULT_DB_ALIAS].features.has_select_for_no_key_update
    list(Organization.objects.select_for_update(no_key=no_key).filter(pk=org.pk).values("pk"))


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
    RollupState.objects.bulk_create(
        [RollupState(organization_id=org.pk, day=day, dirty=True, dirtied_at=now)],
        ignore_conflicts=True,
    )
    # The organization's usage lock first (ingestion's order), then the lock per org-day
    # (see the module docstring).
    organization_usage_lock(org)
    state = RollupState.objects.select_for_update().get(organization_id=org.pk, day=day)
    restate = state.computed_at is not None and state.time_zone == tz
    before = _snapshot(org, day) if restate else None
    for kind in KINDS:
        kind.model.objects.filter(organization_id=org.pk, day=day, hour=None).delete()
    lo, hi = local_day_range(day, tz=tz)
    rows = _insert_interval(org, day, None, lo, hi)
    restated: list[Restatement] = []
    if before is not None:
        restated = _restatements(org, day, before, _snapshot(org, day), now)
        Restatement.objects.bulk_create(restated)
    if day >= org_today(org, now=now) - timedelta(days=HOUR_DAYS):
        # The day's hours too, for the windows whose partial first day this is.
        slots = local_hours(day, tz=tz)
        hour_rows = _rollup_hours_locked(
            org=org,
            day=day,
            hours=list(range(len(slots))),
            tz=tz,
            now=now,
        )
    else:
        hour_rows = 0
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


def _insert_interval(
    org: Organization, day: date, hour: int | None, lo: datetime, hi: datetime
) -> int:
    """Insert the rollup rows of [lo, hi) (the day, or one of its hours); rows written."""
    rows = 0
    selects = _selects(org, day, lo, hi, hour)
    for kind in KINDS:
        rows += _insert_select(kind, selects[kind.name])
        if kind.name == "query":
            for select in _query_dimensions(org, day, hour):
                rows += _insert_select(kind, select)
    return rows


def _worker_hours(org: Organization, slots: list[tuple[datetime, datetime]]) -> set[int]:
    """The hours of the day some worker session overlaps (one DISTINCT query over the
    day's sessions): only those have worker rows."""
    lo, hi = slots[0][0], slots[-1][1]
    sessions = WorkerSession.objects.filter(
        Q(ended_at__gt=lo, started_at__lt=hi) | Q(started_at__gte=lo, started_at__lt=hi),
        organization_id=org.pk,
    )
    spans = sessions.annotate(b=_bucket("started_at", slots), e=_bucket("ended_at", slots))
    hours: set[int] = set()
    for first, last in spans.values_list("b", "e").distinct():
        hours.update(range(first, last + 1))
    return hours


def _rollup_hours_locked(
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
        kind.model.objects.filter(organization_id=org.pk, day=day, hour__in=hours).delete()
    slots = local_hours(day, tz=tz)
    if len(hours) < len(slots):
        for state in states:
            state.rows = _insert_interval(org, day, state.hour, *slots[state.hour])
    else:
        selects = _selects(org, day, slots[0][0], slots[-1][1], slots=slots)
        for kind in KINDS:
            if kind.name == "worker":
                for n in sorted(_worker_hours(org, slots)):
                    worker = _selects(org, day, *slots[n], hour=n)["worker"]
                    _insert_select(kind, worker)
                continue
            _insert_select(kind, selects[kind.name])
            if kind.name == "query":
                for select in _query_dimensions(org, day, every_hour=True):
                    _insert_select(kind, select)
        rows: dict[int, int] = {}
        for kind in KINDS:
            counted = (
                kind.model.objects.filter(organization_id=org.pk, day=day, hour__isnull=False)
                .values_list("hour")
                .annotate(n=Count("id"))
                .order_by()
            )
            for hour, n in counted:
                rows[hour] = rows.get(hour, 0) + n
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
    rows = _rollup_hours_locked(org=org, day=day, hours=[hour], tz=tz, now=now)
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


def local_days(start: datetime, end: datetime, *, tz: str) -> list[date]:
    """The calendar days in tz that [start, end] touches (a single instant: its day)."""
    zone = ZoneInfo(tz or "UTC")
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


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
        kind.model.objects.filter(hour__isnull=False, day__lt=oldest).delete()
    aggregates_prune(before=datetime.combine(oldest, datetime.min.time(), tzinfo=ZoneInfo("UTC")))
    deleted, _ = RollupHour.objects.filter(day__lt=oldest).delete()
    return deleted
