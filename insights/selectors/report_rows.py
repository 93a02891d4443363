"""The explorer's engine: a report's rows read per record kind from the rollup rows, the
bucket aggregates and the raw records (insights/selectors/explorer.py puts them together)."""

from bisect import bisect_right
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Case, IntegerField, Q, Sum, Value, When
from django.db.models.functions import TruncDate

from accounts.models import APIKey, Organization, Project
from billing.models import PriceModel
from core.calendar import local_day_start, local_hours
from insights.selectors.report_sources import (
    DIMENSIONS,
    HOUR,
    KIND_LABELS,
    NOT_APPLICABLE,
    SPANS_PER_QUERY,
    ZERO,
    Source,
    report_sources,
)
from insights.selectors.summaries import clipped_runtime, overlapping
from rollups.selectors.coverage import RollupCoverage
from usage.models import Controller

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


def dimension_filter(source: Source, filters: dict[str, list]) -> Q | None:
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


def _restricted(source: Source, restrict: dict[str, set]) -> Q | None:
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


def _group_columns(source: Source, group_by: tuple[str, ...]) -> list[str]:
    return [source.dims[d] for d in group_by if d in source.dims]


def _group_key(source: Source, group_by: tuple[str, ...], row: dict) -> tuple:
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
        return Decimal(value.total_seconds()) / HOUR
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
    for first in range(0, len(spans), SPANS_PER_QUERY):
        chunk = spans[first : first + SPANS_PER_QUERY]
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
class Reading:
    """What a report reads, the same for its period and the one before."""

    org: Organization
    coverage: RollupCoverage
    bucket: str
    metric: str
    group_by: tuple[str, ...]
    filters: dict[str, list]
    tz: str
    restrict: dict[str, set] = field(default_factory=dict)
    # The projects the requester may see (None: all of the organization's): every row
    # read carries its project, so this is one more condition, never a filter the
    # requester chose (a filter on a project is among `filters`).
    projects: frozenset[int] | None = None


def report_figures(
    reading: Reading,
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
    if reading.projects is not None and not reading.projects:
        return series  # limited to projects, and granted none
    for source in report_sources():
        if metric not in source.metrics:
            continue
        where = dimension_filter(source, reading.filters)
        only = _restricted(source, reading.restrict)
        if where is None or only is None:
            continue
        where &= only
        if reading.projects is not None:
            where &= Q(project_id__in=sorted(reading.projects))
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


def group_labels(org: Organization, group_by: tuple[str, ...], keys) -> dict[tuple, str]:
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
        elif dim == "project" and ids:
            names[dim] = dict(
                Project.objects.filter(organization=org, pk__in=ids).values_list("pk", "name")
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


def percent_of(part: Decimal, whole: Decimal) -> Decimal | None:
    if not whole:
        return None
    return (part * 100 / whole).quantize(Decimal("0.1"))
