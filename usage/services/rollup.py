"""Daily rollups: an organization's day of usage records summed per dimension.

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

**Late records and job moves.** Ingestion marks a closed day dirty (RollupState.dirty)
when a record lands on it, and a job's status move marks its submission day dirty (a
rollup row holds statuses as of its computation). Selectors read dirty days from the raw
records until the next run, so figures stay exact in between; the hourly sweep
recomputes dirty days. When a recomputation changes a day that had been computed, the
change is kept as Restatement rows (one per changed dimension, figures before and after).

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
wholesale is wanted. What does grow with the data is the open day itself (read raw):
late in an organization's day at ~110k records a day, the panel's raw part dominates;
hourly rollups of the open day's closed hours are the next step.
"""

import logging
import time
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
    RollupState,
    WorkerDaily,
    WorkerSession,
)
from usage.windows import local_day_range

logger = logging.getLogger(__name__)

ZERO = Decimal("0")
_FAILED = Q(status__in=[JobStatus.FAILED, JobStatus.CANCELLED])
# Re-zoned days recomputed per sweep (a zone change re-buckets the whole history).
REZONE_BATCH = 400


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


def _sum(name: str, model: type[models.Model], **kwargs) -> Coalesce:
    return Coalesce(Sum(name, **kwargs), models.Value(0), output_field=model._meta.get_field(name))


def _selects(org: Organization, day: date, lo: datetime, hi: datetime) -> dict[str, Any]:
    """Per kind, the aggregate queryset whose rows are the day's rollup rows.

    Annotations are named r_<column>; constant columns (organization, day) are Values,
    which add nothing to GROUP BY.
    """
    const = {"r_organization_id": models.Value(org.pk), "r_day": models.Value(day)}
    jobs = (
        Job.objects.filter(organization_id=org.pk, submitted_at__gte=lo, submitted_at__lt=hi)
        .values("api_key_id", "controller_id")
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
        Query.objects.filter(organization_id=org.pk, occurred_at__gte=lo, occurred_at__lt=hi)
        .values("model_id", "api_key_id", "endpoint", "member")
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
        MatchingRun.objects.filter(organization_id=org.pk, started_at__gte=lo, started_at__lt=hi)
        .values("task", "api_key_id")
        .annotate(
            **const,
            r_runs=Count("id"),
            r_num_records=_sum("num_records", MatchingRun),
            r_run_time_seconds=_sum("run_time_seconds", MatchingRun),
        )
        .order_by()
    )
    return {"job": jobs, "query": queries, "worker": workers, "matching": matching}


def _query_dimensions(org: Organization, day: date) -> list[models.QuerySet]:
    """Per model, endpoint and member: the day's detail rows summed (a few hundred rows
    read, not the records again)."""
    detail = QueryDaily.objects.filter(
        organization_id=org.pk, day=day, dimension=QueryDimension.DETAIL
    )
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
            detail.values(column)
            .annotate(
                r_organization_id=models.Value(org.pk),
                r_day=models.Value(day),
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
    """The day's rollup rows per kind, keyed by their dimension values."""
    snapshot = {}
    for kind in KINDS:
        rows = kind.model.objects.filter(organization_id=org.pk, day=day).values(
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
    RollupState.objects.bulk_create(
        [RollupState(organization_id=org.pk, day=day, dirty=True, dirtied_at=now)],
        ignore_conflicts=True,
    )
    # The lock per org-day (see the module docstring).
    state = RollupState.objects.select_for_update().get(organization_id=org.pk, day=day)
    restate = state.computed_at is not None and state.time_zone == tz
    before = _snapshot(org, day) if restate else None
    for kind in KINDS:
        kind.model.objects.filter(organization_id=org.pk, day=day).delete()
    lo, hi = local_day_range(day, tz=tz)
    rows = 0
    selects = _selects(org, day, lo, hi)
    for kind in KINDS:
        rows += _insert_select(kind, selects[kind.name])
        if kind.name == "query":
            for select in _query_dimensions(org, day):
                rows += _insert_select(kind, select)
    restated: list[Restatement] = []
    if before is not None:
        restated = _restatements(org, day, before, _snapshot(org, day), now)
        Restatement.objects.bulk_create(restated)
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
            "duration_ms": duration_ms,
        },
    )
    return RollupResult(day=day, rows=rows, restatements=len(restated), duration_ms=duration_ms)


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
    return len(due)
