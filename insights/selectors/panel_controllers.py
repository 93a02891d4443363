"""The usage panel's controller load: per controller, jobs running and submitted in the
window and its last heartbeat. Aggregated in the database (rollups/selectors/engine.py)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import (
    Count,
    Max,
    Q,
    Sum,
    Value,
)
from django.utils import timezone

from accounts.models import Organization
from rollups.models import JobBucket, JobDaily
from rollups.selectors.coverage import RollupCoverage, Split
from rollups.selectors.engine import (
    NEVER,
    ZERO,
    Projects,
    UnionPart,
    as_dec,
    as_int,
    coverage_or_default,
    days_q,
    merge_rows,
    or_never,
    raw_q,
    scope_q,
    union_rows,
)
from usage.models import Controller, Job, JobStatus, controller_online_window

# --- Controller load ------------------------------------------------------------------


@dataclass(frozen=True)
class ControllerLoad:
    """One controller's card: capacity, status and the jobs it handled in the window."""

    id: int
    name: str
    cores: int
    memory_gb: int
    online: bool
    last_heartbeat_at: datetime | None
    handled: int
    running: int
    completed: int
    core_hours: Decimal
    last_job_at: datetime | None


def controller_load(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    now: datetime | None = None,
    coverage: RollupCoverage | None = None,
    projects: Projects = None,
) -> list[ControllerLoad]:
    """Every controller of the organization, by name, with the jobs submitted to it in
    [start, end); last handled job over all time (two queries: the controllers, and one
    union for the window's figures and the all-time last job)."""
    now = now or timezone.now()
    cover = coverage_or_default(org, coverage)
    window, ever = cover.split(start, end), cover.split(None, None)
    # Jobs count under their own project (their key's, else the controller's): the cards
    # are the controllers of the projects in scope, with those projects' jobs on them.
    org_q = scope_q(org, projects) & Q(controller__isnull=False)
    rows = union_rows(
        [
            *_controller_bucket_parts(org_q, window, ever),
            *_controller_job_parts(org_q, window, ever),
        ]
    )
    return _controller_cards(org, merge_rows(rows, ["controller_id"]), now, projects)


def _controller_bucket_parts(org_q: Q, window: Split, ever: Split) -> list[UnionPart]:
    """The bucket aggregates' share of the controllers' figures: the window's buckets
    (less those of a first day read whole) and the all-time last job."""
    b_window = or_never(raw_q("bucket", window.buckets))
    b_ever = or_never(raw_q("bucket", ever.buckets))
    b_minus = raw_q("bucket", window.minus_buckets)
    live = org_q & ~Q(submitted=0)
    return [
        (
            JobBucket.objects.all(),
            live & (b_window | b_ever),
            ["controller_id"],
            {
                "f_handled": Sum("submitted", filter=b_window),
                "f_running": Sum("running", filter=b_window),
                "f_completed": Sum("completed", filter=b_window),
                "f_core_hours": Sum("core_hours", filter=b_window),
                "f_last_at": Max("last_submitted_at", filter=b_ever),
            },
        ),
        (
            JobBucket.objects.all(),
            None if b_minus is None else live & b_minus,
            ["controller_id"],
            {
                "f_handled": Value(0) - Sum("submitted"),
                "f_running": Value(0) - Sum("running"),
                "f_completed": Value(0) - Sum("completed"),
                "f_core_hours": Value(ZERO) - Sum("core_hours"),
                "f_last_at": Max("last_submitted_at", filter=NEVER),
            },
        ),
    ]


def _controller_job_parts(org_q: Q, window: Split, ever: Split) -> list[UnionPart]:
    """The raw jobs' and day rollups' share of the controllers' figures: the window's
    (less the part of a first day read whole before the window) and the all-time last
    job."""
    raw_window, raw_ever = raw_q("submitted_at", window.raw), raw_q("submitted_at", ever.raw)
    days_window, days_ever = days_q(window), days_q(ever)
    # The window's hour rows at its edges lie inside the all-time split's clean days.
    days_read = days_ever if days_window is None else or_never(days_ever) | days_window
    minus_where = raw_q("submitted_at", window.minus)
    # An empty Q is "no bounds"; `Q(...) | Q()` would drop it, so it is tested first.
    raw_window, raw_ever = or_never(raw_window), or_never(raw_ever)
    days_window = or_never(days_window)
    return [
        (
            Job.objects.all(),
            org_q & (Q() if not raw_ever else raw_window | raw_ever),
            ["controller_id"],
            {
                "f_handled": Count("id", filter=raw_window),
                "f_running": Count("id", filter=(raw_window) & Q(status=JobStatus.RUNNING)),
                "f_completed": Count("id", filter=(raw_window) & Q(status=JobStatus.COMPLETED)),
                "f_core_hours": Sum("core_hours", filter=raw_window),
                "f_last_at": Max("submitted_at", filter=raw_ever),
            },
        ),
        (
            JobDaily.objects.all(),
            None if days_read is None else org_q & days_read,
            ["controller_id"],
            {
                "f_handled": Sum("submitted", filter=days_window),
                "f_running": Sum("running", filter=days_window),
                "f_completed": Sum("completed", filter=days_window),
                "f_core_hours": Sum("core_hours", filter=days_window),
                "f_last_at": Max("last_submitted_at", filter=or_never(days_ever)),
            },
        ),
        (
            Job.objects.all(),
            None if minus_where is None else org_q & minus_where,
            ["controller_id"],
            {
                "f_handled": Value(0) - Count("id"),
                "f_running": Value(0) - Count("id", filter=Q(status=JobStatus.RUNNING)),
                "f_completed": Value(0) - Count("id", filter=Q(status=JobStatus.COMPLETED)),
                "f_core_hours": Value(ZERO) - Sum("core_hours"),
                "f_last_at": Max("submitted_at", filter=NEVER),
            },
        ),
    ]


def _controller_cards(
    org: Organization, jobs: dict[tuple, dict], now: datetime, projects: Projects
) -> list[ControllerLoad]:
    """Every controller of the organization (of the projects in scope), by name, with its
    jobs' figures (one query)."""
    online_since = now - controller_online_window()
    loads = []
    for c in Controller.objects.filter(scope_q(org, projects)).order_by("name"):
        figures = jobs.get((c.pk,), {})
        loads.append(
            ControllerLoad(
                id=c.pk,
                name=c.name,
                cores=c.cores,
                memory_gb=c.memory_gb,
                online=c.last_heartbeat_at is not None and c.last_heartbeat_at > online_since,
                last_heartbeat_at=c.last_heartbeat_at,
                handled=as_int(figures.get("handled")),
                running=as_int(figures.get("running")),
                completed=as_int(figures.get("completed")),
                core_hours=as_dec(figures.get("core_hours")),
                last_job_at=figures.get("last_at"),
            )
        )
    return loads
