"""The main page's usage summaries: worker runtime and end-user queries per period
(daily, monthly, yearly), one query per figure (rollups/selectors/engine.py)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import (
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import Greatest, Least

from accounts.models import Organization
from insights.selectors.panel import ModelUsage, queries_by_model
from rollups.models import WorkerBucket, WorkerDaily
from rollups.selectors.coverage import RollupCoverage, Split
from rollups.selectors.engine import (
    NEVER,
    ZERO,
    Projects,
    coverage_or_default,
    days_q,
    or_never,
    raw_q,
    scope_q,
    union_rows,
)
from usage.models import WorkerSession
from usage.windows import PERIODS, Window, period_window

# --- Main page: worker runtime and end-user queries per period ------------------------


@dataclass(frozen=True)
class ModelRuntime:
    """A model's worker runtime inside a range (sessions clipped to it)."""

    model: str
    runtime: timedelta = timedelta(0)
    sessions: int = 0


def clipped_runtime(lo: datetime | None, hi: datetime | None) -> ExpressionWrapper:
    """A session's duration inside [lo, hi)."""
    at = DateTimeField()
    end = F("ended_at") if hi is None else Least("ended_at", Value(hi, output_field=at))
    begin = (
        F("started_at")
        if lo is None
        else Greatest("started_at", Value(lo, output_field=DateTimeField()))
    )
    return ExpressionWrapper(end - begin, output_field=DurationField())


def overlapping(lo: datetime | None, hi: datetime | None) -> Q:
    """Sessions overlapping [lo, hi), or starting in it (a zero-length session counts
    where it starts): two index range scans, by end and by start."""
    q = Q()
    if hi is not None:
        q &= Q(started_at__lt=hi)
    if lo is not None:
        q &= Q(ended_at__gt=lo) | Q(started_at__gte=lo)
    return q


def worker_runtime_by_model(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    coverage: RollupCoverage | None = None,
    projects: Projects = None,
) -> list[ModelRuntime]:
    """Worker runtime per model within [start, end): each session counts for the part of
    it inside the range (a session across midnight counts in both days), and is counted
    once if it ran in the range (or, zero-length, started in it). One query.

    Rolled-up days give their clipped runtime and the sessions started on them; the
    sessions already running at the range's start come from the first day's carried-in
    figure when the range starts on a clean day, else from the raw records.
    """
    split = coverage_or_default(org, coverage).split(start, end, complement=False)
    raw_aggregates, raw_where = _session_figures(split)
    first, first_hour = split.first_day_at_start, split.first_hour_at_start
    carried_at = split.bucket_start if first is None and first_hour is None else None
    carried_raw = start is not None and first is None and first_hour is None and not carried_at
    carried = Q(started_at__lt=start, ended_at__gt=start) if carried_raw else NEVER
    raw_aggregates["f_carried"] = Count("id", filter=carried)
    # Both parts need the same columns: pad the shorter with empty sums.
    width = max(len(split.raw), 1)
    days_where = days_q(split)
    org_q = scope_q(org, projects)
    inside = or_never(raw_q("bucket", split.buckets))
    at_start = NEVER if carried_at is None else Q(bucket=carried_at)
    bucket_where = None if not split.buckets and carried_at is None else inside | at_start
    rows = union_rows(
        [
            (
                WorkerBucket.objects.all(),
                None if bucket_where is None else org_q & bucket_where,
                ["model__name"],
                _bucket_figures(width, inside, at_start),
            ),
            (
                WorkerSession.objects.all(),
                None if raw_where is None else org_q & raw_where,
                ["model__name"],
                raw_aggregates,
            ),
            (
                WorkerDaily.objects.all(),
                None if days_where is None else org_q & days_where,
                ["model__name"],
                _rollup_figures(width, first, first_hour),
            ),
        ]
    )
    return _model_runtimes(rows)


def _session_figures(split: Split) -> tuple[dict, Q | None]:
    """Per raw interval n, the sessions' runtime clipped to it (f_runtime_n) and the
    sessions started in it (f_sessions_n); and the filter of sessions overlapping any."""
    aggregates: dict = {}
    where: Q | None = None
    for n, (lo, hi) in enumerate(split.raw):
        overlap = overlapping(lo, hi)
        where = overlap if where is None else where | overlap
        aggregates[f"f_runtime_{n}"] = Sum(clipped_runtime(lo, hi), filter=overlap)
        started = Q()
        if lo is not None:
            started &= Q(started_at__gte=lo)
        if hi is not None:
            started &= Q(started_at__lt=hi)
        aggregates[f"f_sessions_{n}"] = Count("id", filter=started)
    return aggregates, where


def _rollup_figures(width: int, first: date | None, first_hour: tuple[date, int] | None) -> dict:
    """The rollup rows' runtime and sessions started, in the first of `width` column
    pairs, and the sessions carried into the range's first clean day or hour."""
    rolled: dict = {}
    for n in range(width):
        rolled[f"f_runtime_{n}"] = Sum("runtime") if n == 0 else Sum("runtime", filter=NEVER)
        rolled[f"f_sessions_{n}"] = Sum("sessions_started") if n == 0 else Value(0)
    rolled["f_carried"] = Value(0)
    if first is not None:
        rolled["f_carried"] = Sum("sessions_carried_in", filter=Q(day=first, hour__isnull=True))
    elif first_hour is not None:
        day, hour = first_hour
        rolled["f_carried"] = Sum("sessions_carried_in", filter=Q(day=day, hour=hour))
    return rolled


def _bucket_figures(width: int, inside: Q, at_start: Q) -> dict:
    """The buckets' runtime and sessions started inside the range, in the first of
    `width` column pairs, and the sessions carried into the bucket at its start."""
    bucketed: dict = {}
    for n in range(width):
        bucketed[f"f_runtime_{n}"] = Sum("runtime", filter=inside if n == 0 else NEVER)
        bucketed[f"f_sessions_{n}"] = Sum("sessions_started", filter=inside) if n == 0 else Value(0)
    bucketed["f_carried"] = Sum("sessions_carried_in", filter=at_start)
    return bucketed


def _model_runtimes(rows: Iterable[dict]) -> list[ModelRuntime]:
    """Add up the union's rows per model: runtime columns and session counts, largest
    runtime first."""
    runtimes: dict[str, list] = {}
    for row in rows:
        totals = runtimes.setdefault(row["model__name"], [timedelta(0), 0])
        for name, value in row.items():
            if value is None or not name.startswith("f_"):
                continue
            if name.startswith("f_runtime_"):
                if not isinstance(value, timedelta):  # SQLite: microseconds
                    value = timedelta(microseconds=value)
                totals[0] += value
            else:
                totals[1] += int(value)
    result = [
        ModelRuntime(model=name, runtime=runtime, sessions=sessions)
        for name, (runtime, sessions) in runtimes.items()
    ]
    result.sort(key=lambda r: (-r.runtime, r.model))
    return result


@dataclass(frozen=True)
class PeriodColumn:
    key: str
    label: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class SummaryRow:
    """One model (or the total) across the periods, a cell per period."""

    model: str
    cells: list


@dataclass(frozen=True)
class UsageSummaries:
    """The main page's Worker Runtime Summary and End-User Query Summary."""

    periods: list[PeriodColumn]
    runtime_total: SummaryRow
    runtime_rows: list[SummaryRow]
    queries_total: SummaryRow
    queries_rows: list[SummaryRow]

    @property
    def runtime_empty(self) -> bool:
        return not self.runtime_rows

    @property
    def queries_empty(self) -> bool:
        return not self.queries_rows


def _pivot(per_period: list[list], empty, total) -> tuple[SummaryRow, list[SummaryRow]]:
    """Turn one list of per-model figures per period into a row per model (aggregated
    rows only: as many as models, never records)."""
    by_model = [{item.model: item for item in items} for items in per_period]
    models = sorted({name for table in by_model for name in table})
    rows = [
        SummaryRow(model=name, cells=[table.get(name) or empty(name) for table in by_model])
        for name in models
    ]
    return SummaryRow(model="Total", cells=[total(items) for items in per_period]), rows


def usage_summaries(
    *,
    org: Organization,
    now: datetime,
    tz: str,
    coverage: RollupCoverage | None = None,
    projects: Projects = None,
) -> UsageSummaries:
    """Daily (last 24 h), monthly (last calendar month) and yearly (last calendar year)
    worker runtime and end-user queries, total and per model (two queries per period,
    and one for the rollup coverage)."""
    coverage = coverage_or_default(org, coverage)
    windows: list[Window] = [period_window(p, now=now, tz=tz) for p in PERIODS]
    runtimes = [
        worker_runtime_by_model(
            org=org, start=w.start, end=w.end, coverage=coverage, projects=projects
        )
        for w in windows
    ]
    queries = [
        queries_by_model(org=org, start=w.start, end=w.end, coverage=coverage, projects=projects)
        for w in windows
    ]
    runtime_total, runtime_rows = _pivot(
        runtimes,
        lambda name: ModelRuntime(model=name),
        lambda items: ModelRuntime(
            model="Total",
            runtime=sum((i.runtime for i in items), timedelta(0)),
            sessions=sum(i.sessions for i in items),
        ),
    )
    queries_total, queries_rows = _pivot(
        queries,
        lambda name: ModelUsage(model=name),
        lambda items: ModelUsage(
            model="Total",
            queries=sum(i.queries for i in items),
            input_tokens=sum(i.input_tokens for i in items),
            output_tokens=sum(i.output_tokens for i in items),
            total_tokens=sum(i.total_tokens for i in items),
            credits=sum((i.credits for i in items), ZERO),
        ),
    )
    return UsageSummaries(
        periods=[PeriodColumn(w.key, w.label, w.start, w.end) for w in windows],  # type: ignore[arg-type]
        runtime_total=runtime_total,
        runtime_rows=runtime_rows,
        queries_total=queries_total,
        queries_rows=queries_rows,
    )
