"""The usage explorer's reads: any range, metric, grouping, filters and bucket width.

One report is a few aggregate queries whatever the range, the grouping or the number of
groups: per record kind that has the metric, one over the clean rollup rows inside the
range (day rows, or hour rows for hourly buckets) grouped by (day, hour, dimensions), and
one over the raw records of the rest (the open hour, edge hours, dirty or not yet
rolled-up spans; rollups/selectors/coverage.py) grouped by (bucket, dimensions), where the bucket is
a CASE over the raw spans cut at bucket edges. What the rollup rows leave inside the
bucket aggregates' horizon (rollups/services/aggregates.py) is read from those instead of
the records, grouped the same way (their minute buckets fall whole inside report buckets,
which are whole local minutes; a range edge inside a minute moves to its end, as
rollups/selectors/coverage.py says). Rows come back aggregated, never as
records; they are summed into buckets here. Buckets are local to the organization's zone
(usage/windows.py: `report_buckets`), so a day is the customer's day, DST included.

Dimensions: model, api_key, member, endpoint, controller and kind. A kind that lacks a
dimension shows "—" when grouped by it and drops out when filtered on it (a filter on a
controller keeps jobs only).
"""

import time
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import OperationalError, connections, router, transaction
from django.db.models import Case, Count, IntegerField, Max, Q, Sum, Value, When
from django.db.models.functions import TruncDate

from accounts.calendar import local_day_start, local_hours
from accounts.errors import FieldError
from accounts.models import APIKey, Organization
from billing.models import PriceModel
from insights.selectors.summaries import clipped_runtime, overlapping
from rollups.models import (
    JobBucket,
    JobDaily,
    QueryBucket,
    QueryDaily,
    QueryDimension,
    WorkerBucket,
    WorkerDaily,
)
from rollups.selectors.coverage import RollupCoverage, rollup_coverage
from usage.models import Controller, IngestBatch, Job, Query, WorkerSession
from usage.windows import previous_range, report_buckets

DIMENSIONS = {
    "model": "Model",
    "api_key": "API key",
    "member": "Member",
    "endpoint": "Endpoint",
    "controller": "Controller",
    "kind": "Kind",
}
METRICS = {
    "credits": "Credits",
    "input_tokens": "Tokens in",
    "output_tokens": "Tokens out",
    "tokens": "Tokens (in + out)",
    "queries": "Queries",
    "core_hours": "Core-hours",
    "jobs": "Jobs",
    "worker_runtime": "Worker runtime (hours)",
}
# What each metric counts in, for the CSV's unit column and the charts' value axes.
METRIC_UNITS = {
    "credits": "credits",
    "input_tokens": "tokens",
    "output_tokens": "tokens",
    "tokens": "tokens",
    "queries": "queries",
    "core_hours": "core-hours",
    "jobs": "jobs",
    "worker_runtime": "hours",
}
KIND_LABELS = {"query": "Queries", "worker_session": "Worker sessions", "job": "Jobs"}
NOT_APPLICABLE = "—"
# A report shows at most this many groups, the largest by its metric; the rest are
# added up as one "Other" group, so its size (and its work) stays bounded whatever
# values usage carried (endpoints and members are whatever the caller sent).
MAX_GROUPS = 50
OTHER = "(other)"
# Dimensions whose values are whatever usage carried (not the organization's own keys,
# controllers or the price list): their group totals are read first, and only the
# largest groups per bucket.
UNBOUNDED = {"member", "endpoint"}
ZERO = Decimal("0")
_HOUR = Decimal(3600)
# Raw spans per query for worker runtime (one column each): well inside every
# database's column limit.
_SPANS_PER_QUERY = 300


@dataclass(frozen=True)
class _Source:
    """One record kind: its raw and rollup tables and what the explorer reads of them."""

    kind: str
    raw: type
    rolled: type
    bucketed: type
    time_field: str
    dims: dict[str, str]  # dimension -> column, the same name on both tables
    metrics: dict[str, tuple]  # metric -> (raw aggregate, rollup aggregate)
    rolled_where: Q = field(default_factory=Q)


def _sources() -> list[_Source]:
    return [
        _Source(
            kind="query",
            raw=Query,
            rolled=QueryDaily,
            bucketed=QueryBucket,
            time_field="occurred_at",
            dims={
                "model": "model_id",
                "api_key": "api_key_id",
                "member": "member",
                "endpoint": "endpoint",
            },
            metrics={
                "credits": (Sum("credits"), Sum("credits")),
                "input_tokens": (Sum("input_tokens"), Sum("input_tokens")),
                "output_tokens": (Sum("output_tokens"), Sum("output_tokens")),
                "tokens": (Sum("total_tokens"), Sum("total_tokens")),
                "queries": (Count("id"), Sum("queries")),
            },
            # The detail rows carry every dimension (model × key × endpoint × member).
            rolled_where=Q(dimension=QueryDimension.DETAIL),
        ),
        _Source(
            kind="worker_session",
            raw=WorkerSession,
            rolled=WorkerDaily,
            bucketed=WorkerBucket,
            time_field="started_at",
            dims={"model": "model_id", "api_key": "api_key_id"},
            metrics={
                "credits": (Sum("credits"), Sum("credits")),
                "worker_runtime": (None, Sum("runtime")),
            },
        ),
        _Source(
            kind="job",
            raw=Job,
            rolled=JobDaily,
            bucketed=JobBucket,
            time_field="submitted_at",
            dims={"api_key": "api_key_id", "controller": "controller_id"},
            metrics={
                "credits": (Sum("credits"), Sum("credits")),
                "core_hours": (Sum("core_hours"), Sum("core_hours")),
                "jobs": (Count("id"), Sum("submitted")),
            },
        ),
    ]


# --- Results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportGroup:
    key: tuple  # the dimensions' values (ids for keys, controllers and models)
    label: str
    total: Decimal
    share: Decimal | None  # percent of the report's total
    previous: Decimal
    change: Decimal | None  # percent against the previous period (None: it was zero)
    series: tuple[Decimal, ...]
    # The groups past MAX_GROUPS added up; `count` says how many they are.
    other: bool = False
    count: int = 1


@dataclass(frozen=True)
class UsageReport:
    metric: str
    group_by: tuple[str, ...]
    bucket: str
    tz: str
    start: datetime
    end: datetime
    buckets: tuple[tuple[datetime, datetime], ...]
    groups: tuple[ReportGroup, ...]
    total: Decimal
    previous_start: datetime
    previous_total: Decimal
    change: Decimal | None
    # How current the figures are: the newest ingested batch they include.
    data_through: datetime | None
    live: bool
    # The record kinds added up (those with the metric that the filters keep).
    kinds: tuple[str, ...] = ()

    @property
    def folded(self) -> int:
        """How many groups the "Other" group adds up (0: every group is shown)."""
        return self.groups[-1].count if self.groups and self.groups[-1].other else 0

    @property
    def integral(self) -> bool:
        return self.metric in {"input_tokens", "output_tokens", "tokens", "queries", "jobs"}


# --- The engine -------------------------------------------------------------------------


def _spans(intervals: list, buckets: list[tuple[datetime, datetime]]) -> list[tuple]:
    """Intervals (the split's raw or bucket ones) cut at bucket edges:
    [(lo, hi, bucket index)]."""
    starts = [lo for lo, _hi in buckets]
    spans = []
    for lo, hi in intervals:
        lo = buckets[0][0] if lo is None else lo
        hi = buckets[-1][1] if hi is None else hi
        index = max(bisect_right(starts, lo) - 1, 0)
        while lo < hi and index < len(buckets):
            cut = min(hi, buckets[index][1])
            if lo < cut:
                spans.append((lo, cut, index))
            lo = cut
            index += 1
    return spans


def _dim_filter(source: _Source, filters: dict[str, list]) -> Q | None:
    """The filters as a Q on the source (None: the source cannot match them)."""
    q = Q()
    for dim, values in filters.items():
        if not values:
            continue
        if dim == "kind":
            if source.kind not in values:
                return None
            continue
        column = source.dims.get(dim)
        if column is None:
            return None
        q &= Q(**{f"{column}__in": values})
    return q


def _restricted(source: _Source, restrict: dict[str, set]) -> Q | None:
    """Only the groups named in `restrict` ({dimension: values}, values as group keys
    hold them: None for an empty id, NOT_APPLICABLE for a kind without the dimension);
    None when the source holds none of them."""
    q = Q()
    for dim, values in restrict.items():
        if dim == "kind":
            if source.kind not in values:
                return None
            continue
        column = source.dims.get(dim)
        if column is None:
            if NOT_APPLICABLE in values:
                continue
            return None
        named = [v for v in values if v not in (None, NOT_APPLICABLE)]
        if not named and None not in values:
            return None
        part = Q(**{f"{column}__in": named})
        if None in values:
            part |= Q(**{f"{column}__isnull": True})
        q &= part
    return q


def _group_columns(source: _Source, group_by: tuple[str, ...]) -> list[str]:
    return [source.dims[d] for d in group_by if d in source.dims]


def _group_key(source: _Source, group_by: tuple[str, ...], row: dict) -> tuple:
    key = []
    for dim in group_by:
        if dim == "kind":
            key.append(source.kind)
        elif dim in source.dims:
            key.append(row[source.dims[dim]])
        else:
            key.append(NOT_APPLICABLE)
    return tuple(key)


def _number(value) -> Decimal:
    if value is None:
        return ZERO
    if isinstance(value, timedelta):
        return Decimal(value.total_seconds()) / _HOUR
    return Decimal(value)


def _merged(spans: list[tuple]) -> list[tuple[datetime, datetime]]:
    """Spans that touch, joined back into intervals (fewer conditions to filter on)."""
    merged: list[list] = []
    for lo, hi, _index in spans:
        if merged and merged[-1][1] == lo:
            merged[-1][1] = hi
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _raw_point_rows(
    source, metric, org, spans, where, columns, *, buckets, bucket, tz, aggregates=False
):
    """Raw records of a point-in-time kind (or, `aggregates`, its bucket aggregate rows:
    worker runtime too, clipped to each minute), summed per (report bucket, dimensions).

    Day, week and month buckets group by the local date in SQL (one expression, however
    many buckets); hour buckets by a CASE over the spans (at most 31 days of hours)."""
    raw_aggregate = source.metrics[metric][1 if aggregates else 0]
    if not spans:
        return []
    time = "bucket" if aggregates else source.time_field
    table = source.bucketed if aggregates else source.raw
    if aggregates:
        where = where & source.rolled_where
    within = Q()
    for lo, hi in _merged(spans):
        within |= Q(**{f"{time}__gte": lo, f"{time}__lt": hi})
    queryset = table.objects.filter(within, where, organization=org)
    if bucket in ("1d", "1w", "1mo"):
        zone = ZoneInfo(tz)
        starts = [lo.astimezone(zone).date() for lo, _hi in buckets]
        rows = (
            queryset.annotate(x_day=TruncDate(time, tzinfo=zone))
            .values("x_day", *columns)
            .annotate(x_value=raw_aggregate)
            .order_by()
        )
        return [(bisect_right(starts, _as_date(row["x_day"])) - 1, row) for row in rows]
    whens = [
        When(Q(**{f"{time}__gte": lo, f"{time}__lt": hi}), then=Value(index))
        for lo, hi, index in spans
    ]
    rows = (
        queryset.annotate(x_bucket=Case(*whens, default=Value(-1), output_field=IntegerField()))
        .values("x_bucket", *columns)
        .annotate(x_value=raw_aggregate)
        .order_by()
    )
    return [(row["x_bucket"], row) for row in rows]


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _raw_runtime_rows(source, org, spans, where, columns):
    """Worker runtime clipped to each raw span, per (span's bucket, dimensions): one
    column per span, a few hundred spans a query."""
    out = []
    for first in range(0, len(spans), _SPANS_PER_QUERY):
        chunk = spans[first : first + _SPANS_PER_QUERY]
        overlap = Q()
        aggregates = {}
        for n, (lo, hi, _index) in enumerate(chunk):
            overlap |= overlapping(lo, hi)
            aggregates[f"x_{n}"] = Sum(clipped_runtime(lo, hi), filter=overlapping(lo, hi))
        records = source.raw.objects.filter(overlap, where, organization=org)
        if columns:
            rows = records.values(*columns).annotate(**aggregates).order_by()
        else:
            # No dimension: one total. (Grouping by every column would be grouping by
            # the id, which partitioned tables' (id, started_at) key no longer implies.)
            totals = records.aggregate(**aggregates)
            rows = [totals] if any(v is not None for v in totals.values()) else []
        for row in rows:
            for n, (_lo, _hi, index) in enumerate(chunk):
                out.append((index, {**row, "x_value": row[f"x_{n}"]}))
    return out


def _rolled_rows(source, metric, org, split, where, columns, buckets, tz):
    """Clean rollup rows inside the range, per (day, hour, dimensions), with the bucket
    each falls in."""
    days_q: Q | None = None
    for first, end in split.days:
        part = Q(day__gte=first, day__lt=end, hour__isnull=True)
        days_q = part if days_q is None else days_q | part
    for day, first_hour, end_hour in split.hours:
        part = Q(day=day, hour__gte=first_hour, hour__lt=end_hour)
        days_q = part if days_q is None else days_q | part
    if days_q is None:
        return []
    rows = (
        source.rolled.objects.filter(days_q, source.rolled_where, where, organization=org)
        .values("day", "hour", *columns)
        .annotate(x_value=source.metrics[metric][1])
        .order_by()
    )
    starts = [lo for lo, _hi in buckets]
    hours_of: dict = {}
    out = []
    for row in rows:
        if row["hour"] is None:
            at = local_day_start(row["day"], tz=tz)
        else:
            hours = hours_of.setdefault(row["day"], local_hours(row["day"], tz=tz))
            at = hours[row["hour"]][0]
        out.append((bisect_right(starts, at) - 1, row))
    return out


@dataclass(frozen=True)
class _Reading:
    """What a report reads, the same for its period and the one before."""

    org: Organization
    coverage: RollupCoverage
    bucket: str
    metric: str
    group_by: tuple[str, ...]
    filters: dict[str, list]
    tz: str
    restrict: dict[str, set] = field(default_factory=dict)


def _figures(
    reading: _Reading,
    *,
    start: datetime,
    end: datetime,
    buckets: list[tuple[datetime, datetime]],
) -> dict[tuple, list[Decimal]]:
    """{group key: [value per bucket]} over [start, end)."""
    coverage, metric, group_by = reading.coverage, reading.metric, reading.group_by
    if reading.bucket == "1h":
        # (A report's group totals are read with the bucket "total": the whole range as
        # one bucket, from day rows where there are some.)
        # A day row cannot be cut into hours: read hour rows, and raw where there are none.
        coverage = replace(coverage, clean_days=())
    # Buckets in another zone than the rollups' are read from the records alone.
    split = coverage.split(start, end, tz=reading.tz, complement=False)
    spans = _spans(split.raw, buckets)
    bucket_spans = _spans(split.buckets, buckets)
    cut = {"buckets": buckets, "bucket": reading.bucket, "tz": reading.tz}
    org = reading.org
    series: dict[tuple, list[Decimal]] = {}
    for source in _sources():
        if metric not in source.metrics:
            continue
        where = _dim_filter(source, reading.filters)
        only = _restricted(source, reading.restrict)
        if where is None or only is None:
            continue
        where &= only
        columns = _group_columns(source, group_by)
        if source.metrics[metric][0] is None:
            raw = _raw_runtime_rows(source, org, spans, where, columns)
        else:
            raw = _raw_point_rows(source, metric, org, spans, where, columns, **cut)
        rolled = _rolled_rows(source, metric, org, split, where, columns, buckets, coverage.tz)
        rolled += _raw_point_rows(
            source, metric, org, bucket_spans, where, columns, aggregates=True, **cut
        )
        for index, row in raw + rolled:
            if not 0 <= index < len(buckets):
                continue
            values = series.setdefault(_group_key(source, group_by, row), [ZERO] * len(buckets))
            values[index] += _number(row["x_value"])
    return series


def _labels(org: Organization, group_by: tuple[str, ...], keys) -> dict[tuple, str]:
    """Readable names for group keys: one query per id dimension present."""
    names: dict[str, dict] = {}
    for position, dim in enumerate(group_by):
        ids = {k[position] for k in keys if k[position] not in (None, NOT_APPLICABLE)}
        if dim == "api_key" and ids:
            names[dim] = {
                k.pk: f"{k.name} ({k.display})"
                for k in APIKey.objects.filter(organization=org, pk__in=ids)
            }
        elif dim == "controller" and ids:
            names[dim] = dict(
                Controller.objects.filter(organization=org, pk__in=ids).values_list("pk", "name")
            )
        elif dim == "model" and ids:
            names[dim] = dict(PriceModel.objects.filter(pk__in=ids).values_list("pk", "name"))
    empty = {
        "api_key": "Unattributed",
        "controller": "Managed",
        "member": "(no member)",
        "endpoint": "(no endpoint)",
    }
    labels = {}
    for key in keys:
        parts = []
        for position, dim in enumerate(group_by):
            value = key[position]
            if value == NOT_APPLICABLE:
                # Records of a kind without this dimension (jobs have no model).
                parts.append(f"(no {DIMENSIONS[dim].lower()})")
            elif dim == "kind":
                parts.append(KIND_LABELS.get(value, value))
            elif value in (None, ""):
                parts.append(empty.get(dim, NOT_APPLICABLE))
            else:
                parts.append(str(names.get(dim, {}).get(value, value)))
        labels[key] = " · ".join(parts) if parts else "All usage"
    return labels


def _percent(part: Decimal, whole: Decimal) -> Decimal | None:
    if not whole:
        return None
    return (part * 100 / whole).quantize(Decimal("0.1"))


def usage_received_through(*, org: Organization) -> datetime | None:
    """When the newest ingested batch was received: pages read at request time include
    every batch received until then, so this says how current their figures are."""
    return IngestBatch.objects.filter(organization=org).aggregate(at=Max("received_at"))["at"]


def _check_metric_and_groups(metric: str, group_by: tuple[str, ...]) -> None:
    """ValueError unless the metric and every grouping dimension are known."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}")
    for dim in group_by:
        if dim not in DIMENSIONS:
            raise ValueError(f"group_by must be among {', '.join(DIMENSIONS)}")


def _report_groups(
    org: Organization,
    group_by: tuple[str, ...],
    series: dict[tuple, list[Decimal]],
    before: dict[tuple, list[Decimal]],
    total: Decimal,
    bucket_count: int,
) -> list[ReportGroup]:
    """One group per key seen in either period, largest first, with its share of the
    total and its change against the previous period."""
    keys = set(series) | set(before)
    labels = _labels(org, group_by, keys)
    groups = [
        _group(key, labels[key], series.get(key, [ZERO] * bucket_count), before, total)
        for key in keys
    ]
    groups.sort(key=lambda g: (-g.total, -g.previous, g.label))
    return groups


def _group(key, label, values, before, total, **extra) -> ReportGroup:
    group_total = sum(values, ZERO)
    previous = before.get(key, [ZERO])[0]
    return ReportGroup(
        key=key,
        label=label,
        total=group_total,
        share=_percent(group_total, total),
        previous=previous,
        change=_percent(group_total - previous, previous),
        series=tuple(values),
        **extra,
    )


class ReportTooCostly(Exception):
    """The report needs more database time than one request may take."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.message = (
            f"the report needs more than the {seconds:g}-second limit of one request; "
            "ask for a shorter range, a coarser bucket, fewer groups or filters"
        )
        super().__init__(self.message)


def _time_limit() -> float:
    return float(settings.USAGE_REPORT_TIME_LIMIT)


@contextmanager
def report_time_limit(*, seconds: float) -> Iterator[None]:
    """Statements run inside share `seconds` of database time: none starts after the
    deadline, and on PostgreSQL each is cancelled when it runs past it (a statement
    timeout of what is left), so a worker answers an error instead of being killed."""
    deadline = time.monotonic() + seconds
    # Where the report's reads go (a replica, when the request may read one).
    db = connections[router.db_for_read(Query)]
    postgresql = db.vendor == "postgresql"

    def guard(execute, sql, params, many, context):
        left = deadline - time.monotonic()
        if left <= 0:
            raise ReportTooCostly(seconds)
        if postgresql:
            # On the driver's cursor, so this SET is not itself guarded.
            context["cursor"].cursor.execute(
                f"SET LOCAL statement_timeout = {max(int(left * 1000), 1)}"
            )
        return execute(sql, params, many, context)

    try:
        with ExitStack() as stack:
            if postgresql:
                # SET LOCAL lasts until the transaction ends. (Not on SQLite, whose
                # transactions here take the write lock.)
                stack.enter_context(transaction.atomic(using=db.alias))
            stack.enter_context(db.execute_wrapper(guard))
            yield
            if postgresql:
                with db.cursor() as cursor:
                    cursor.cursor.execute("SET LOCAL statement_timeout TO DEFAULT")
    except OperationalError as exc:
        if postgresql and getattr(exc.__cause__, "sqlstate", None) == "57014":
            raise ReportTooCostly(seconds) from None
        raise


def _top_keys(
    totals: dict[tuple, list[Decimal]], before: dict[tuple, list[Decimal]]
) -> set[tuple] | None:
    """The MAX_GROUPS largest groups by their total (then the previous period's), or
    None when there are no more than that."""
    keys = set(totals) | set(before)
    if len(keys) <= MAX_GROUPS:
        return None

    def rank(key):
        return (-sum(totals.get(key, [ZERO])), -before.get(key, [ZERO])[0], str(key))

    return set(sorted(keys, key=rank)[:MAX_GROUPS])


def _restriction(group_by: tuple[str, ...], keys: set[tuple]) -> dict[str, set]:
    """Filters that keep the given groups (and, grouped by several dimensions, maybe a
    few more, which the caller drops)."""
    return {dim: {key[position] for key in keys} for position, dim in enumerate(group_by)}


def usage_report(
    *,
    org: Organization,
    start: datetime,
    end: datetime,
    metric: str,
    group_by: tuple[str, ...] = (),
    filters: dict[str, list] | None = None,
    bucket: str = "1d",
    tz: str | None = None,
    now: datetime,
    coverage: RollupCoverage | None = None,
) -> UsageReport:
    """The metric over [start, end) per group and bucket, with the previous period of the
    same length; past MAX_GROUPS groups, the smallest are one "Other" group. Raises
    ValueError naming a bad bucket or range (report_buckets), ReportTooCostly past the
    time limit (settings.USAGE_REPORT_TIME_LIMIT seconds)."""
    _check_metric_and_groups(metric, group_by)
    tz = tz or org.time_zone or "UTC"
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    buckets = report_buckets(start, end, bucket=bucket, tz=tz)
    group_by = tuple(group_by)
    with report_time_limit(seconds=_time_limit()):
        reading = _Reading(
            org=org,
            coverage=coverage if coverage is not None else rollup_coverage(org=org, now=now),
            bucket=bucket,
            metric=metric,
            group_by=group_by,
            filters={k: list(v) for k, v in (filters or {}).items() if v},
            tz=tz,
        )
        previous_start, previous_end = previous_range(start, end)
        before = _figures(
            reading,
            start=previous_start,
            end=previous_end,
            buckets=[(previous_start, previous_end)],
        )
        top, totals, everything = None, {}, None
        if set(group_by) & UNBOUNDED:
            # Group totals first (one bucket: as many rows as groups), so that only the
            # largest groups are read per bucket.
            totals = _figures(
                replace(reading, bucket="total"), start=start, end=end, buckets=[(start, end)]
            )
            top = _top_keys(totals, before)
        if top is None:
            series = _figures(reading, start=start, end=end, buckets=buckets)
            totals = {key: [sum(values, ZERO)] for key, values in series.items()}
            top = _top_keys(totals, before) if group_by else None
            if top is not None:
                everything = [sum(column, ZERO) for column in zip(*series.values(), strict=True)]
                series = {key: values for key, values in series.items() if key in top}
        else:
            restricted = replace(reading, restrict=_restriction(group_by, top))
            shown = _figures(restricted, start=start, end=end, buckets=buckets)
            series = {key: values for key, values in shown.items() if key in top}
            whole = _figures(replace(reading, group_by=()), start=start, end=end, buckets=buckets)
            everything = whole.get((), [ZERO] * len(buckets))
        data_through = usage_received_through(org=org)
    if everything is None:
        total = sum((sum(v, ZERO) for v in series.values()), ZERO)
    else:
        total = sum(everything, ZERO)
    previous_total = sum((v[0] for v in before.values()), ZERO)
    shown_before = before if top is None else {k: v for k, v in before.items() if k in top}
    groups = _report_groups(org, group_by, series, shown_before, total, len(buckets))
    if top is not None and everything is not None:
        rest = [
            value - sum((values[index] for values in series.values()), ZERO)
            for index, value in enumerate(everything)
        ]
        rest_before = previous_total - sum((v[0] for v in shown_before.values()), ZERO)
        count = len(set(totals) | set(before)) - len(top)
        key = (OTHER,) * len(group_by)
        label = f"Other ({count} group{'s' if count != 1 else ''})"
        groups.append(
            _group(key, label, rest, {key: [rest_before]}, total, other=True, count=count)
        )
    return UsageReport(
        metric=metric,
        group_by=group_by,
        bucket=bucket,
        tz=tz,
        start=start,
        end=end,
        buckets=tuple(buckets),
        groups=tuple(groups),
        total=total,
        previous_start=previous_start,
        previous_total=previous_total,
        change=_percent(total - previous_total, previous_total),
        data_through=data_through,
        live=end >= now - timedelta(hours=1) and start < now,
        kinds=tuple(
            source.kind
            for source in _sources()
            if metric in source.metrics and _dim_filter(source, reading.filters) is not None
        ),
    )


# --- Parameters, as the page and the API receive them -----------------------------------


class ReportParamError(FieldError):
    """A bad report parameter: `field` names it as the caller sent it."""


MAX_FILTER_VALUES = 50


def report_filters_resolve(
    *, org: Organization, filters: dict[str, list[str]], field_name=lambda dim: dim
) -> dict[str, list]:
    """The filters as the engine takes them (ids for models, keys and controllers),
    checked against the organization: another organization's key or controller, an
    unknown model or kind is a ReportParamError naming `field_name(dim)`."""
    resolved: dict[str, list] = {}
    for dim, raw_values in filters.items():
        values = [v.strip() for v in raw_values if v and v.strip()]
        if not values:
            continue
        name = field_name(dim)
        if not all(_storable(v) for v in values):
            raise ReportParamError(name, "must not contain NUL or unpaired surrogate characters")
        if dim not in DIMENSIONS:
            raise ReportParamError(name, f"unknown dimension; one of {', '.join(DIMENSIONS)}")
        if len(values) > MAX_FILTER_VALUES:
            raise ReportParamError(name, f"at most {MAX_FILTER_VALUES} values")
        resolved[dim] = _filter_values(org, dim, set(values), name)
    return resolved


def _storable(text: str) -> bool:
    """Text every database can hold (PostgreSQL's text refuses NUL; UTF-8, surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _ids(values: set[str], name: str) -> set[int]:
    try:
        return {int(v) for v in values}
    except ValueError:
        raise ReportParamError(name, "must be ids (whole numbers)") from None


def _filter_values(org: Organization, dim: str, values: set[str], name: str) -> list:
    if dim == "kind":
        unknown = values - set(KIND_LABELS)
        if unknown:
            raise ReportParamError(name, f"one of {', '.join(KIND_LABELS)}")
        return sorted(values)
    if dim == "model":
        found = dict(PriceModel.objects.filter(name__in=values).values_list("name", "pk"))
        if len(found) != len(values):
            raise ReportParamError(name, f"unknown model {sorted(values - set(found))[0]!r}")
        return sorted(found.values())
    if dim == "api_key":
        ids = _ids(values, name)
        keys = APIKey.objects.filter(organization=org, pk__in=ids)
        found_ids = set(keys.values_list("pk", flat=True))
        if found_ids != ids:
            raise ReportParamError(name, "no such API key in this organization")
        return sorted(found_ids)
    if dim == "controller":
        ids = _ids(values, name)
        found_ids = set(
            Controller.objects.filter(organization=org, pk__in=ids).values_list("pk", flat=True)
        )
        if found_ids != ids:
            raise ReportParamError(name, "no such controller in this organization")
        return sorted(found_ids)
    if any(len(v) > 254 for v in values):
        raise ReportParamError(name, "values are at most 254 characters")
    return sorted(values)


@dataclass(frozen=True)
class FilterOption:
    value: str
    label: str


def report_filter_options(*, org: Organization, now: datetime) -> dict[str, list[FilterOption]]:
    """What the page offers to filter on: this organization's keys, controllers,
    members and endpoints (from the rollups and the last two days' bucket aggregates),
    every model, the kinds."""
    keys = [
        FilterOption(str(k.pk), f"{k.name} ({k.display})")
        for k in APIKey.objects.filter(organization=org).order_by("name", "pk")
    ]
    controllers = [
        FilterOption(str(pk), name)
        for pk, name in Controller.objects.filter(organization=org)
        .order_by("name")
        .values_list("pk", "name")
    ]
    names = PriceModel.objects.order_by("name").values_list("name", flat=True)
    models = [FilterOption(n, n) for n in names]
    since = now - timedelta(days=2)

    def distinct(column: str, dimension: str) -> list[FilterOption]:
        rolled = QueryDaily.objects.filter(organization=org, dimension=dimension).exclude(
            **{column: ""}
        )
        recent = QueryBucket.objects.filter(
            organization=org, dimension=dimension, bucket__gte=since
        ).exclude(**{column: ""})
        names = set(rolled.values_list(column, flat=True).distinct()[:500])
        names |= set(recent.values_list(column, flat=True).distinct()[:500])
        return [FilterOption(n, n) for n in sorted(names)]

    return {
        "model": models,
        "api_key": keys,
        "member": distinct("member", QueryDimension.MEMBER),
        "endpoint": distinct("endpoint", QueryDimension.ENDPOINT),
        "controller": controllers,
        "kind": [FilterOption(k, label) for k, label in KIND_LABELS.items()],
    }
