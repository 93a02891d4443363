"""What Explore and the usage report API can show: the metrics and dimensions, and per
record kind where each is read (raw records, rollup rows, bucket aggregates). A new metric
is declared here (and its unit), then read by insights/selectors/report_rows.py."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, Sum

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
        Source(
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
        Source(
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
