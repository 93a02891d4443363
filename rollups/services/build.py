"""What a rollup row is and how one is built: the four kinds, their INSERT … SELECT …
GROUP BY statements over an interval (a day or an hour), the snapshot a recompute is
compared with and the restatements it records. The lock every writer of an
organization's usage takes first is in usage/locks.py."""

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import Count, DateTimeField, DurationField, ExpressionWrapper, Max, Q, Sum
from django.db.models.functions import Coalesce, Greatest, Least

from accounts.models import Organization
from rollups.metrics import (
    JOB_FIGURES,
    MATCHING_FIGURES,
    QUERY_FIGURES,
    WORKER_FIGURES,
    figure_names,
)
from rollups.models import (
    JobDaily,
    MatchingDaily,
    QueryDaily,
    QueryDimension,
    Restatement,
    WorkerDaily,
)
from usage.models import Job, JobStatus, MatchingRun, Query, WorkerSession, field_column

logger = logging.getLogger(__name__)


ZERO = Decimal("0")


_FAILED = Q(status__in=[JobStatus.FAILED, JobStatus.CANCELLED])


@dataclass(frozen=True)
class RollupKind:
    """One rollup table: its record model, dimension columns and figure columns (in the
    order rollups/metrics.py declares them)."""

    name: str
    model: type[models.Model]
    dimensions: tuple[str, ...]
    figures: tuple[str, ...]


KINDS = (
    RollupKind(
        "job",
        JobDaily,
        ("project_id", "api_key_id", "controller_id"),
        tuple(figure_names(JOB_FIGURES)),
    ),
    RollupKind(
        "query",
        QueryDaily,
        ("dimension", "project_id", "model_id", "api_key_id", "endpoint", "member"),
        tuple(figure_names(QUERY_FIGURES)),
    ),
    RollupKind(
        "worker",
        WorkerDaily,
        ("project_id", "model_id", "api_key_id"),
        tuple(figure_names(WORKER_FIGURES)),
    ),
    RollupKind(
        "matching",
        MatchingDaily,
        ("project_id", "task", "api_key_id"),
        tuple(figure_names(MATCHING_FIGURES)),
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


def concrete_field(model: type[models.Model], name: str) -> models.Field:
    """The model's field `name`, a column of its table (not a reverse relation)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise ValueError(f"{model.__name__}.{name} has no column")
    return field


def figure_sum(name: str, model: type[models.Model], **kwargs) -> Coalesce:
    return Coalesce(Sum(name, **kwargs), models.Value(0), output_field=concrete_field(model, name))


def row_constants(org: Organization, day: date, hour: int | None) -> dict[str, models.Value]:
    const = {"r_organization_id": models.Value(org.pk), "r_day": models.Value(day)}
    if hour is not None:
        const["r_hour"] = models.Value(hour, output_field=models.PositiveSmallIntegerField())
    return const


def hour_slots_case(field: str, slots: list[tuple[datetime, datetime]]) -> models.Case:
    """The hour of the day (an index into `slots`) a time within the day falls in."""
    whens = [
        models.When(**{f"{field}__lt": end}, then=models.Value(n))
        for n, (_start, end) in enumerate(slots[:-1])
    ]
    return models.Case(
        *whens, default=models.Value(len(slots) - 1), output_field=models.IntegerField()
    )


def by_hour(queryset: models.QuerySet, field: str, slots, dimensions: tuple) -> models.QuerySet:
    """The records grouped by `dimensions`, and by hour when `slots` are given."""
    if slots is None:
        return queryset.values(*dimensions)
    return queryset.annotate(r_hour=hour_slots_case(field, slots)).values(*dimensions, "r_hour")


def rollup_selects(
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
    const = row_constants(org, day, hour)
    return {
        "job": _job_select(org, lo, hi, slots, const),
        "query": _query_select(org, lo, hi, slots, const),
        "worker": _worker_select(org, lo, hi, const),
        "matching": _matching_select(org, lo, hi, slots, const),
    }


_Slots = list[tuple[datetime, datetime]] | None


def _job_select(
    org: Organization, lo: datetime, hi: datetime, slots: _Slots, const: dict
) -> models.QuerySet:
    """Job rollup rows: jobs submitted in [lo, hi) by key and controller."""
    return (
        by_hour(
            Job.objects.filter(organization_id=org.pk, submitted_at__gte=lo, submitted_at__lt=hi),
            "submitted_at",
            slots,
            ("project_id", "api_key_id", "controller_id"),
        )
        .annotate(
            **const,
            r_submitted=Count("id"),
            r_completed=Count("id", filter=Q(status=JobStatus.COMPLETED)),
            r_running=Count("id", filter=Q(status=JobStatus.RUNNING)),
            r_failed=Count("id", filter=Q(status=JobStatus.FAILED)),
            r_cancelled=Count("id", filter=Q(status=JobStatus.CANCELLED)),
            r_core_hours=figure_sum("core_hours", Job),
            r_credits=figure_sum("credits", Job),
            r_wasted_core_hours=figure_sum("core_hours", Job, filter=_FAILED),
            r_wasted_credits=figure_sum("credits", Job, filter=_FAILED),
            r_last_submitted_at=Max("submitted_at"),
        )
        .order_by()
    )


def _query_select(
    org: Organization, lo: datetime, hi: datetime, slots: _Slots, const: dict
) -> models.QuerySet:
    """Query detail rows: queries in [lo, hi) by model, key, endpoint and member."""
    return (
        by_hour(
            Query.objects.filter(organization_id=org.pk, occurred_at__gte=lo, occurred_at__lt=hi),
            "occurred_at",
            slots,
            ("project_id", "model_id", "api_key_id", "endpoint", "member"),
        )
        .annotate(
            **const,
            r_dimension=models.Value(QueryDimension.DETAIL),
            r_queries=Count("id"),
            r_input_tokens=figure_sum("input_tokens", Query),
            r_output_tokens=figure_sum("output_tokens", Query),
            r_total_tokens=figure_sum("total_tokens", Query),
            r_credits=figure_sum("credits", Query),
        )
        .order_by()
    )


def _worker_select(org: Organization, lo: datetime, hi: datetime, const: dict) -> models.QuerySet:
    """Worker rows: sessions' runtime clipped to [lo, hi), those started in it and those
    carried in, by model and key (never grouped by hour: a session spans several)."""
    started_today = Q(started_at__gte=lo)
    clipped = ExpressionWrapper(
        Least("ended_at", models.Value(hi, output_field=DateTimeField()))
        - Greatest("started_at", models.Value(lo, output_field=DateTimeField())),
        output_field=DurationField(),
    )
    return (
        WorkerSession.objects.filter(
            # Overlapping the day, or starting on it (a zero-length session counts where
            # it starts); written as two index range scans (by end, by start).
            Q(ended_at__gt=lo, started_at__lt=hi) | Q(started_at__gte=lo, started_at__lt=hi),
            organization_id=org.pk,
        )
        .values("project_id", "model_id", "api_key_id")
        .annotate(
            **const,
            r_sessions_started=Count("id", filter=started_today),
            r_sessions_carried_in=Count("id", filter=~started_today),
            r_runtime=Sum(clipped),
            r_credits=figure_sum("credits", WorkerSession, filter=started_today),
        )
        .order_by()
    )


def _matching_select(
    org: Organization, lo: datetime, hi: datetime, slots: _Slots, const: dict
) -> models.QuerySet:
    """Matching rows: runs started in [lo, hi) by task and key."""
    return (
        by_hour(
            MatchingRun.objects.filter(
                organization_id=org.pk, started_at__gte=lo, started_at__lt=hi
            ),
            "started_at",
            slots,
            ("project_id", "task", "api_key_id"),
        )
        .annotate(
            **const,
            r_runs=Count("id"),
            r_num_records=figure_sum("num_records", MatchingRun),
            r_run_time_seconds=figure_sum("run_time_seconds", MatchingRun),
        )
        .order_by()
    )


def query_dimension_selects(
    org: Organization, day: date, hour: int | None = None, every_hour: bool = False
) -> list:
    """Per project and model, endpoint or member: the day's (or hour's, or with `every_hour` each
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
            detail.values("project_id", column, *group)
            .annotate(
                **row_constants(org, day, hour),
                r_dimension=models.Value(dimension),
                **blanks,
                **{f"r_{name}": Sum(name) for name in figure_names(QUERY_FIGURES)},
            )
            .order_by()
        )
    return selects


def rows_insert_select(kind: RollupKind, queryset: models.QuerySet) -> int:
    """INSERT INTO the kind's table SELECT the queryset's rows (one statement)."""
    connection = connections[DEFAULT_DB_ALIAS]
    compiler = queryset.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    table = kind.model._meta.db_table
    columns = []
    for _expression, _sql, alias in compiler.select:
        name = alias.removeprefix("r_")
        columns.append(field_column(concrete_field(kind.model, name.removesuffix("_id"))))
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        # Table and column names come from model metadata, never from input.
        cursor.execute(f"INSERT INTO {connection.ops.quote_name(table)} ({quoted}) {sql}", params)
        return cursor.rowcount


def rollup_snapshot(org: Organization, day: date) -> dict[str, dict[tuple, dict]]:
    """The day's whole-day rollup rows per kind, keyed by their dimension values."""
    snapshot = {}
    for kind in KINDS:
        rows = kind.model._default_manager.filter(
            organization_id=org.pk, day=day, hour=None
        ).values(*kind.dimensions, *kind.figures)
        snapshot[kind.name] = {
            tuple(row[d] for d in kind.dimensions): {f: row[f] for f in kind.figures}
            for row in rows
        }
    return snapshot


def figure_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def figures_json(figures: dict | None) -> dict | None:
    return None if figures is None else {k: figure_json(v) for k, v in figures.items()}


def restatements_record(
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
                    before=figures_json(old.get(key)),
                    after=figures_json(new.get(key)),
                    restated_at=now,
                )
            )
    return changes


def interval_insert(
    org: Organization, day: date, hour: int | None, lo: datetime, hi: datetime
) -> int:
    """Insert the rollup rows of [lo, hi) (the day, or one of its hours); rows written."""
    rows = 0
    selects = rollup_selects(org, day, lo, hi, hour)
    for kind in KINDS:
        rows += rows_insert_select(kind, selects[kind.name])
        if kind.name == "query":
            for select in query_dimension_selects(org, day, hour):
                rows += rows_insert_select(kind, select)
    return rows
