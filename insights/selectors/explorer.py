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

Dimensions: model, api_key, member, endpoint, controller, kind and project. A kind that lacks a
dimension shows "—" when grouped by it and drops out when filtered on it (a filter on a
controller keeps jobs only). Every kind has a project.

A member limited to projects (docs/projects.md) reads only their projects' rows:
`projects` (accounts/projects.py `project_ids_visible`) is one more condition on every
row read, whatever the filters say, and the report's total is theirs alone.
"""

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import OperationalError, connections, router, transaction
from django.db.models import Max

from accounts.models import Organization
from insights.selectors.report_rows import (
    Reading,
    dimension_filter,
    group_labels,
    percent_of,
    report_figures,
)
from insights.selectors.report_sources import (
    DIMENSIONS,
    MAX_GROUPS,
    METRICS,
    OTHER,
    UNBOUNDED,
    ZERO,
    report_sources,
)
from rollups.selectors.coverage import RollupCoverage, rollup_coverage
from usage.models import IngestBatch, Query
from usage.windows import previous_range, report_buckets

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


def usage_received_through(
    *, org: Organization, projects: frozenset[int] | None = None
) -> datetime | None:
    """When the newest ingested batch was received: pages read at request time include
    every batch received until then, so this says how current their figures are (of the
    given projects' batches only, when given)."""
    batches = IngestBatch.objects.filter(organization=org)
    if projects is not None:
        batches = batches.filter(project_id__in=sorted(projects))
    return batches.aggregate(at=Max("received_at"))["at"]


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
    labels = group_labels(org, group_by, keys)
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
        share=percent_of(group_total, total),
        previous=previous,
        change=percent_of(group_total - previous, previous),
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
    projects: frozenset[int] | None = None,
) -> UsageReport:
    """The metric over [start, end) per group and bucket, with the previous period of the
    same length; past MAX_GROUPS groups, the smallest are one "Other" group. Only the
    rows of `projects` when given (the projects the requester may see). Raises
    ValueError naming a bad bucket or range (report_buckets), ReportTooCostly past the
    time limit (settings.USAGE_REPORT_TIME_LIMIT seconds)."""
    _check_metric_and_groups(metric, group_by)
    tz = tz or org.time_zone or "UTC"
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    buckets = report_buckets(start, end, bucket=bucket, tz=tz)
    group_by = tuple(group_by)
    with report_time_limit(seconds=_time_limit()):
        reading = Reading(
            org=org,
            coverage=coverage if coverage is not None else rollup_coverage(org=org, now=now),
            bucket=bucket,
            metric=metric,
            group_by=group_by,
            filters={k: list(v) for k, v in (filters or {}).items() if v},
            tz=tz,
            projects=projects,
        )
        previous_start, previous_end = previous_range(start, end)
        before = report_figures(
            reading,
            start=previous_start,
            end=previous_end,
            buckets=[(previous_start, previous_end)],
        )
        top, totals, everything = None, {}, None
        if set(group_by) & UNBOUNDED:
            # Group totals first (one bucket: as many rows as groups), so that only the
            # largest groups are read per bucket.
            totals = report_figures(
                replace(reading, bucket="total"), start=start, end=end, buckets=[(start, end)]
            )
            top = _top_keys(totals, before)
        if top is None:
            series = report_figures(reading, start=start, end=end, buckets=buckets)
            totals = {key: [sum(values, ZERO)] for key, values in series.items()}
            top = _top_keys(totals, before) if group_by else None
            if top is not None:
                everything = [sum(column, ZERO) for column in zip(*series.values(), strict=True)]
                series = {key: values for key, values in series.items() if key in top}
        else:
            restricted = replace(reading, restrict=_restriction(group_by, top))
            shown = report_figures(restricted, start=start, end=end, buckets=buckets)
            series = {key: values for key, values in shown.items() if key in top}
            whole = report_figures(
                replace(reading, group_by=()), start=start, end=end, buckets=buckets
            )
            everything = whole.get((), [ZERO] * len(buckets))
        data_through = usage_received_through(org=org, projects=projects)
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
        change=percent_of(total - previous_total, previous_total),
        data_through=data_through,
        live=end >= now - timedelta(hours=1) and start < now,
        kinds=tuple(
            source.kind
            for source in report_sources()
            if metric in source.metrics and dimension_filter(source, reading.filters) is not None
        ),
    )
