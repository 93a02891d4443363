"""The query engine every usage figure stands on: one query per figure, a UNION ALL of
an aggregate over the clean rollup rows inside the range (day rows of whole days, hour
rows of whole finished hours), an aggregate over the per-minute bucket aggregates of the
rest (the current hour, partial edge hours, days and hours not rolled up or dirty;
rollups/services/aggregates.py), and raw records only for what lies before the buckets'
horizon and is not rolled up (rollups/selectors/coverage.py says how a range edge inside a
minute is read), summed per group (aggregated rows only, never records). So a page costs
about the same at ten million records as at ten thousand. Callers pass one `coverage`
per page (one query); without it each selector looks it up itself.
"""

from datetime import datetime
from decimal import Decimal

from django.db.models import (
    Count,
    Max,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from accounts.models import Organization
from rollups.metrics import QUERY_FIGURES, figure_names
from rollups.models import JobBucket, JobDaily, QueryBucket, QueryDaily, QueryDimension
from rollups.selectors.coverage import Interval, RollupCoverage, Split, rollup_coverage
from usage.models import Job, JobStatus, Query

ZERO = Decimal("0")
FAILED = Q(status__in=[JobStatus.FAILED, JobStatus.CANCELLED])


def in_range(field_name: str, start: datetime | None, end: datetime) -> Q:
    q = Q(**{f"{field_name}__lt": end})
    if start is not None:
        q &= Q(**{f"{field_name}__gte": start})
    return q


def org_queries(org: Organization, start: datetime | None, end: datetime) -> QuerySet[Query]:
    return Query.objects.filter(in_range("occurred_at", start, end), organization=org)


# The projects a read covers (accounts/projects.py `project_ids_in_scope`): None is the
# whole organization, no project filter; an empty set is none (a limited member without
# a grant).
Projects = frozenset[int] | None


def scope_q(org: Organization, projects: Projects = None) -> Q:
    """The rows of the organization, of the projects in scope only. Records, rollup rows
    and bucket rows all carry `project_id`, and it is part of the rollups' unique keys, so
    one project reads as few rows as the organization."""
    q = Q(organization=org)
    if projects is None:
        return q
    return q & (Q(project_id__in=sorted(projects)) if projects else NEVER)


# --- Rollups and raw records, one UNION ALL per figure -------------------------------


def coverage_or_default(org: Organization, coverage: RollupCoverage | None) -> RollupCoverage:
    return coverage if coverage is not None else rollup_coverage(org=org)


def raw_q(field_name: str, intervals: list[Interval]) -> Q | None:
    """Records whose `field_name` falls in one of the raw intervals (None: none)."""
    q: Q | None = None
    for lo, hi in intervals:
        part = Q()
        if lo is not None:
            part &= Q(**{f"{field_name}__gte": lo})
        if hi is not None:
            part &= Q(**{f"{field_name}__lt": hi})
        q = part if q is None else q | part
    return q


def days_q(split: Split) -> Q | None:
    """The rollup rows a split reads: whole-day rows of its day runs, hour rows of its
    hour runs (None: none)."""
    q: Q | None = None
    for first, end in split.days:
        part = Q(day__gte=first, day__lt=end, hour__isnull=True)
        q = part if q is None else q | part
    for day, first_hour, end_hour in split.hours:
        part = Q(day=day, hour__gte=first_hour, hour__lt=end_hour)
        q = part if q is None else q | part
    return q


# A part of a union: (queryset, filter or None to leave it out, group-by names, aggregates).
UnionPart = tuple[QuerySet, Q | None, list, dict]


def union_rows(parts: list[UnionPart]) -> list[dict]:
    """Rows of every part that has something to read, as one UNION ALL query.

    A part is (queryset, filter, group-by expressions by name order, aggregates); every
    part names its columns alike (f_<name>), so the union lines up.
    """
    querysets = []
    for queryset, where, group, aggregates in parts:
        if where is None:
            continue
        qs = queryset.filter(where)
        qs = qs.values(*group) if group else qs.annotate(f_all=Value(1)).values("f_all")
        querysets.append(qs.annotate(**aggregates).order_by())
    if not querysets:
        return []
    if len(querysets) == 1:
        return list(querysets[0])
    # Django 6.1 gives a combined query its model's default ordering: drop it.
    return list(querysets[0].union(*querysets[1:], all=True).order_by())


def merge_rows(
    rows: list[dict],
    group: list[str],
    maxima: tuple[str, ...] = ("last_at",),
    count: str | None = None,
) -> dict[tuple, dict]:
    """Sum the parts' rows per group (None counts as nothing; `maxima` take the max).

    With `count`, groups whose count sums to zero are dropped: a day read from its
    rollup minus its records before the window leaves such groups behind.
    """
    merged: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(row[g] for g in group)
        into = merged.setdefault(key, {})
        for name, value in row.items():
            if name in group or name == "f_all" or not name.startswith("f_"):
                continue
            name = name[2:]
            if value is None:
                into.setdefault(name, None)
                continue
            old = into.get(name)
            if old is None:
                into[name] = value
            elif name in maxima:
                into[name] = max(old, value)
            else:
                into[name] = old + value
    if count is not None:
        merged = {key: f for key, f in merged.items() if as_int(f.get(count)) != 0}
    return merged


def or_never(q: Q | None) -> Q:
    # Not `q or NEVER`: an empty Q (no bounds: everything) is falsy.
    return NEVER if q is None else q


def as_int(value) -> int:
    return int(value or 0)


def as_dec(value) -> Decimal:
    return ZERO if value is None else Decimal(value)


BYOC = Q(controller__isnull=False)
# A filter no row passes that still compiles (an empty IN would drop the whole query).
NEVER = Q(pk__isnull=True)


def negated(aggregates: dict) -> dict:
    """The same figures taken off (maxima become empty): the `minus` part of a split."""
    out = {}
    for name, aggregate in aggregates.items():
        if isinstance(aggregate, Max):
            out[name] = Max(aggregate.source_expressions[0], filter=NEVER)
        else:
            out[name] = Value(0) - aggregate
    return out


def job_parts(org: Organization, split: Split, group: list[str], projects: Projects = None) -> list:
    """The raw Job and rollup JobDaily parts of the job figures, grouped alike."""
    raw = {
        "f_submitted": Count("id"),
        "f_completed": Count("id", filter=Q(status=JobStatus.COMPLETED)),
        "f_running": Count("id", filter=Q(status=JobStatus.RUNNING)),
        "f_failed": Count("id", filter=Q(status=JobStatus.FAILED)),
        "f_cancelled": Count("id", filter=Q(status=JobStatus.CANCELLED)),
        "f_on_controllers": Count("id", filter=BYOC),
        "f_managed": Count("id", filter=~BYOC),
        "f_core_hours_managed": Sum("core_hours", filter=~BYOC),
        "f_core_hours_byoc": Sum("core_hours", filter=BYOC),
        "f_wasted_credits": Sum("credits", filter=FAILED),
        "f_wasted_core_hours": Sum("core_hours", filter=FAILED),
        "f_last_at": Max("submitted_at"),
    }
    rolled = {
        "f_submitted": Sum("submitted"),
        "f_completed": Sum("completed"),
        "f_running": Sum("running"),
        "f_failed": Sum("failed"),
        "f_cancelled": Sum("cancelled"),
        "f_on_controllers": Sum("submitted", filter=BYOC),
        "f_managed": Sum("submitted", filter=~BYOC),
        "f_core_hours_managed": Sum("core_hours", filter=~BYOC),
        "f_core_hours_byoc": Sum("core_hours", filter=BYOC),
        "f_wasted_credits": Sum("wasted_credits"),
        "f_wasted_core_hours": Sum("wasted_core_hours"),
        "f_last_at": Max("last_submitted_at"),
    }
    if split.trimmed is not None:
        day, start = split.trimmed
        rolled["f_last_at"] = Max(
            "last_submitted_at", filter=~Q(day=day) | Q(last_submitted_at__gte=start)
        )
    org_q = scope_q(org, projects)
    raw_where = raw_q("submitted_at", split.raw)
    days_where = days_q(split)
    minus_where = raw_q("submitted_at", split.minus)
    bucketed = {**rolled, "f_last_at": Max("last_submitted_at")}
    # A job's status move can leave a bucket row at zero jobs (and an old last time).
    live = org_q & ~Q(submitted=0)
    return [
        (Job.objects.all(), None if raw_where is None else org_q & raw_where, group, raw),
        (
            JobDaily.objects.all(),
            None if days_where is None else org_q & days_where,
            group,
            rolled,
        ),
        (
            Job.objects.all(),
            None if minus_where is None else org_q & minus_where,
            group,
            negated(raw),
        ),
        *bucket_parts(JobBucket.objects.all(), live, split, group, bucketed),
    ]


def bucket_parts(queryset: QuerySet, where: Q, split: Split, group: list, aggregates: dict):
    """The bucket-aggregate parts of a split: its bucket intervals, and its `minus` ones
    taken off."""
    inside = raw_q("bucket", split.buckets)
    minus = raw_q("bucket", split.minus_buckets)
    return [
        (queryset, None if inside is None else where & inside, group, aggregates),
        (queryset, None if minus is None else where & minus, group, negated(aggregates)),
    ]


def query_parts(
    org: Organization,
    split: Split,
    group: list[str],
    dimension: str = QueryDimension.MODEL,
    projects: Projects = None,
) -> list:
    """The raw Query and rollup QueryDaily parts of the query figures, grouped alike; the
    rollup side reads the rows of `dimension` (per model ones also give totals)."""
    raw = {
        "f_queries": Count("id"),
        "f_input_tokens": Sum("input_tokens"),
        "f_output_tokens": Sum("output_tokens"),
        "f_total_tokens": Sum("total_tokens"),
        "f_credits": Sum("credits"),
    }
    rolled = {f"f_{name}": Sum(name) for name in figure_names(QUERY_FIGURES)}
    org_q = scope_q(org, projects)
    raw_where = raw_q("occurred_at", split.raw)
    days_where = days_q(split)
    minus_where = raw_q("occurred_at", split.minus)
    bucket_where = org_q & Q(dimension=dimension)
    return [
        *bucket_parts(QueryBucket.objects.all(), bucket_where, split, group, rolled),
        (Query.objects.all(), None if raw_where is None else org_q & raw_where, group, raw),
        (
            QueryDaily.objects.all(),
            None if days_where is None else org_q & Q(dimension=dimension) & days_where,
            group,
            rolled,
        ),
        (
            Query.objects.all(),
            None if minus_where is None else org_q & minus_where,
            group,
            negated(raw),
        ),
    ]


def query_usage(figures: dict) -> dict:
    return {
        "queries": as_int(figures.get("queries")),
        "input_tokens": as_int(figures.get("input_tokens")),
        "output_tokens": as_int(figures.get("output_tokens")),
        "total_tokens": as_int(figures.get("total_tokens")),
        "credits": as_dec(figures.get("credits")),
    }


def int_sum(name: str, **kwargs) -> Coalesce:
    return Coalesce(Sum(name, **kwargs), Value(0))
