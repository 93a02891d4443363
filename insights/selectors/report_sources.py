"""What Explore and the usage report API can show: the metrics and dimensions, and per
record kind where each is read (raw records, rollup rows, bucket aggregates). Metrics,
their units and the figure each kind reads for them are declared in rollups/metrics.py;
insights/selectors/report_rows.py reads them."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, Sum

from rollups.metrics import JOB_FIGURES, QUERY_FIGURES, WORKER_FIGURES, Figure
from rollups.metrics import METRICS as METRIC_DECLARATIONS
from rollups.models import (
    JobBucket,
    JobDaily,
    QueryBucket,
    QueryDaily,
    QueryDimension,
    WorkerBucket,
    WorkerDaily,
)
from usage.models import Job, Query, WorkerSession

DIMENSIONS = {
    "model": "Model",
    "api_key": "API key",
    "member": "Member",
    "endpoint": "Endpoint",
    "controller": "Controller",
    "kind": "Kind",
    "project": "Project",
}
METRICS = {metric.name: metric.label for metric in METRIC_DECLARATIONS}
# What each metric counts in, for the CSV's unit column and the charts' value axes.
METRIC_UNITS = {metric.name: metric.unit for metric in METRIC_DECLARATIONS}
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
HOUR = Decimal(3600)
# Raw spans per query for worker runtime (one column each): well inside every
# database's column limit.
SPANS_PER_QUERY = 300


@dataclass(frozen=True)
class Source:
    """One record kind: its raw and rollup tables and what the explorer reads of them."""

    kind: str
    raw: type
    rolled: type
    bucketed: type
    time_field: str
    dims: dict[str, str]  # dimension -> column, the same name on both tables
    metrics: dict[str, tuple]  # metric -> (raw aggregate, rollup aggregate)
    rolled_where: Q = field(default_factory=Q)


def _metrics(figures: tuple[Figure, ...]) -> dict[str, tuple]:
    """The kind's Explore metrics: (aggregate over raw records or None, over rollup and
    bucket rows), from the figures rollups/metrics.py gives a metric."""
    metrics = {}
    for figure in figures:
        if figure.metric is None:
            continue
        raw = {"sum": Sum(figure.name), "count": Count("id"), None: None}[figure.from_records]
        metrics[figure.metric] = (raw, Sum(figure.name))
    return metrics


def report_sources() -> list[Source]:
    return [
        Source(
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
                "project": "project_id",
            },
            metrics=_metrics(QUERY_FIGURES),
            # The detail rows carry every dimension (model × key × endpoint × member).
            rolled_where=Q(dimension=QueryDimension.DETAIL),
        ),
        Source(
            kind="worker_session",
            raw=WorkerSession,
            rolled=WorkerDaily,
            bucketed=WorkerBucket,
            time_field="started_at",
            dims={"model": "model_id", "api_key": "api_key_id", "project": "project_id"},
            metrics=_metrics(WORKER_FIGURES),
        ),
        Source(
            kind="job",
            raw=Job,
            rolled=JobDaily,
            bucketed=JobBucket,
            time_field="submitted_at",
            dims={
                "api_key": "api_key_id",
                "controller": "controller_id",
                "project": "project_id",
            },
            metrics=_metrics(JOB_FIGURES),
        ),
    ]
