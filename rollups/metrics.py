"""Each record kind's figures, declared once.

A figure is a column of both of its kind's aggregate tables, the daily rollup (e.g.
JobDaily) and the bucket aggregate (e.g. JobBucket); the metrics Explore and the usage
report API offer are declared here too. From these come the figure fields of both
models (rollups/models.py), the figure lists of the bucket upserts
(rollups/services/aggregates.py), the rollup kinds and snapshots
(rollups/services/build.py) and the explorer's metric table
(insights/selectors/report_sources.py). What a new metric still needs besides its line
here is in docs/data-lifecycle.md ("Adding a metric").

Plain data: no models are imported, so any layer may read it.
"""

from dataclasses import dataclass
from typing import Literal

# What a figure holds, and so its column on both tables (rollups/models.py):
#   count, big_count: a number of things (the bucket column is signed: a job's status move
#       subtracts); credits, core_hours: exact decimals at their ledger scale; seconds: a
#       decimal number of seconds; duration: a time span; time: an instant.
FigureType = Literal["count", "big_count", "credits", "core_hours", "seconds", "duration", "time"]


@dataclass(frozen=True)
class Metric:
    """A metric Explore and the report API offer: its label and the unit it counts in."""

    name: str
    label: str
    unit: str


@dataclass(frozen=True)
class Figure:
    """One figure column of a record kind's rollup and bucket tables.

    `sums`: how two rows' figures combine (added, or the later instant kept).
    `metric`: the Explore metric this figure is for this kind, if any, and `from_records`
    how Explore computes it from raw records: the sum of the record's column of the same
    name, a count of records, or None (never read raw).
    """

    name: str
    type: FigureType
    sums: Literal["add", "max"] = "add"
    metric: str | None = None
    from_records: Literal["sum", "count"] | None = "sum"


# In the order Explore lists them.
METRICS = (
    Metric("credits", "Credits", "credits"),
    Metric("input_tokens", "Tokens in", "tokens"),
    Metric("output_tokens", "Tokens out", "tokens"),
    Metric("tokens", "Tokens (in + out)", "tokens"),
    Metric("queries", "Queries", "queries"),
    Metric("core_hours", "Core-hours", "core-hours"),
    Metric("jobs", "Jobs", "jobs"),
    Metric("worker_runtime", "Worker runtime (hours)", "hours"),
)

# Each kind's figures in column order: the bucket upserts' SELECTs emit them in this order.

# Jobs submitted in the interval, statuses as of the computation.
JOB_FIGURES = (
    Figure("submitted", "count", metric="jobs", from_records="count"),
    Figure("completed", "count"),
    Figure("running", "count"),
    Figure("failed", "count"),
    Figure("cancelled", "count"),
    Figure("core_hours", "core_hours", metric="core_hours"),
    Figure("credits", "credits", metric="credits"),
    # Of failed and cancelled jobs.
    Figure("wasted_core_hours", "core_hours"),
    Figure("wasted_credits", "credits"),
    Figure("last_submitted_at", "time", sums="max"),
)

# Queries in the interval.
QUERY_FIGURES = (
    Figure("queries", "count", metric="queries", from_records="count"),
    Figure("input_tokens", "big_count", metric="input_tokens"),
    Figure("output_tokens", "big_count", metric="output_tokens"),
    Figure("total_tokens", "big_count", metric="tokens"),
    Figure("credits", "credits", metric="credits"),
)

# Worker sessions: started in the interval, already running at its first instant (carried
# in), runtime clipped to it, credits of the sessions started in it (each charged once).
WORKER_FIGURES = (
    Figure("sessions_started", "count"),
    Figure("sessions_carried_in", "count"),
    Figure("runtime", "duration", metric="worker_runtime", from_records=None),
    Figure("credits", "credits", metric="credits"),
)

# Matching runs started in the interval.
MATCHING_FIGURES = (
    Figure("runs", "count"),
    Figure("num_records", "big_count"),
    Figure("run_time_seconds", "seconds"),
)


def figure_names(figures: tuple[Figure, ...], sums: str | None = None) -> list[str]:
    """The figures' column names in order (with `sums`, only those combined that way)."""
    return [f.name for f in figures if sums is None or f.sums == sums]
