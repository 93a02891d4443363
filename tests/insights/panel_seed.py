"""Known usage for the panel's tests, with records on every window's edges, and the
figures each window should show computed here by plain Python over the same list
(never through the code under test)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from tests.factories import make_api_key, make_controller, make_job, make_query, make_user

NOW = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)

# Window starts written out by hand; every window ends at NOW (exclusive).
WINDOW_STARTS = {
    "24h": datetime(2026, 11, 20, 15, 30, tzinfo=UTC),
    "7d": datetime(2026, 11, 14, 15, 30, tzinfo=UTC),
    "30d": datetime(2026, 10, 22, 15, 30, tzinfo=UTC),
    "all": None,
}


def ago(**kwargs) -> datetime:
    return NOW - timedelta(**kwargs)


@dataclass(frozen=True)
class J:
    key: str | None
    controller: str | None
    status: str
    at: datetime
    core_hours: D
    credits: D


JOBS = [
    J("lab", "dgx-01", "completed", ago(hours=1), D("2.5"), D("0.075")),
    J("lab", None, "running", ago(hours=2), D("0"), D("0")),
    J("lab", None, "failed", ago(hours=24), D("1.5"), D("0.18")),  # first instant of 24h
    J("ci", "edge-02", "cancelled", ago(hours=24, microseconds=1), D("0.25"), D("0.0075")),
    J(None, None, "completed", ago(days=3), D("4"), D("0.48")),
    J("ci", None, "submitted", ago(days=7), D("0"), D("0")),  # first instant of 7d
    J("lab", "dgx-01", "failed", ago(days=7, seconds=1), D("3"), D("0.09")),
    J(None, "dgx-01", "completed", ago(days=30), D("10"), D("0.3")),  # first instant of 30d
    J("ci", None, "completed", ago(days=30, seconds=1), D("6"), D("0.72")),
    J("lab", None, "completed", ago(days=400), D("100"), D("12")),
    J("lab", None, "completed", NOW, D("1"), D("0.12")),  # windows end before now: in none
]


@dataclass(frozen=True)
class Q:
    at: datetime
    model: str
    input_tokens: int
    output_tokens: int
    endpoint: str
    member: str
    credits: D


QUERIES = [
    Q(ago(minutes=5), "llama-3.1-8b", 100, 400, "/v1/chat/completions", "ana@example.com", D("1")),
    Q(ago(hours=24), "llama-3.1-70b", 1000, 1000, "/v1/chat/completions", "bo@example.com", D("2")),
    Q(ago(hours=24, microseconds=1), "e5-large-v2", 5000, 0, "/v1/embeddings", "", D("0.5")),
    Q(ago(days=10), "llama-3.1-8b", 2000, 3000, "/v1/completions", "ana@example.com", D("3")),
    Q(ago(days=45), "llama-3.1-70b", 7, 3, "/v1/chat/completions", "bo@example.com", D("0.25")),
    # The calendar month's edges (UTC organization): the first is October, the second November.
    Q(datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=UTC), "phi-3-mini", 1, 1, "", "", D("0")),
    Q(datetime(2026, 11, 1, tzinfo=UTC), "phi-3-mini", 2, 3, "/v1/chat/completions", "", D("0")),
]


def seed(org, *, with_queries: bool = True) -> dict:
    """Write JOBS (and QUERIES) for org; returns the keys and controllers by name."""
    keys = {
        "lab": make_api_key(org=org, name="Lab workstation")[0],
        "ci": make_api_key(org=org, name="CI runner", kind="personal", user=make_user())[0],
    }
    controllers = {
        name: make_controller(org=org, name=name)[0] for name in ("dgx-01", "edge-02", "idle-03")
    }
    controllers["dgx-01"].last_heartbeat_at = NOW - timedelta(seconds=30)
    controllers["dgx-01"].save(update_fields=["last_heartbeat_at"])
    controllers["edge-02"].last_heartbeat_at = NOW - timedelta(hours=1)
    controllers["edge-02"].save(update_fields=["last_heartbeat_at"])
    for job in JOBS:
        make_job(
            org=org,
            submitted_at=job.at,
            status=job.status,
            api_key=keys.get(job.key),
            controller=controllers.get(job.controller),
            core_hours=job.core_hours,
            credits=job.credits,
        )
    if with_queries:
        for q in QUERIES:
            make_query(
                org=org,
                occurred_at=q.at,
                model=q.model,
                input_tokens=q.input_tokens,
                output_tokens=q.output_tokens,
                endpoint=q.endpoint,
                member=q.member,
                credits=q.credits,
            )
    return {"keys": keys, "controllers": controllers}


def inside(at: datetime, window: str) -> bool:
    start = WINDOW_STARTS[window]
    return (start is None or at >= start) and at < NOW


def jobs_in(window: str) -> list[J]:
    return [j for j in JOBS if inside(j.at, window)]


def queries_in(window: str) -> list[Q]:
    return [q for q in QUERIES if inside(q.at, window)]


def expected_overview(window: str) -> dict:
    jobs = jobs_in(window)
    failed = [j for j in jobs if j.status in ("failed", "cancelled")]
    return {
        "submitted": len(jobs),
        "completed": sum(j.status == "completed" for j in jobs),
        "running": sum(j.status == "running" for j in jobs),
        "failed": sum(j.status == "failed" for j in jobs),
        "cancelled": sum(j.status == "cancelled" for j in jobs),
        "on_controllers": sum(j.controller is not None for j in jobs),
        "managed": sum(j.controller is None for j in jobs),
        "core_hours_managed": sum((j.core_hours for j in jobs if not j.controller), D(0)),
        "core_hours_byoc": sum((j.core_hours for j in jobs if j.controller), D(0)),
        "wasted_credits": sum((j.credits for j in failed), D(0)),
        "wasted_core_hours": sum((j.core_hours for j in failed), D(0)),
    }


def expected_keys(window: str) -> dict[str | None, dict]:
    out: dict[str | None, dict] = {}
    for j in jobs_in(window):
        card = out.setdefault(
            j.key,
            {
                "jobs": 0,
                "core_hours": D(0),
                "running": 0,
                "byoc": 0,
                "failed": 0,
                "cancelled": 0,
                "last_job_at": None,
                "wasted_credits": D(0),
                "wasted_core_hours": D(0),
            },
        )
        card["jobs"] += 1
        card["core_hours"] += j.core_hours
        card["running"] += j.status == "running"
        card["byoc"] += j.controller is not None
        card["failed"] += j.status == "failed"
        card["cancelled"] += j.status == "cancelled"
        card["last_job_at"] = max(filter(None, [card["last_job_at"], j.at]))
        if j.status in ("failed", "cancelled"):
            card["wasted_credits"] += j.credits
            card["wasted_core_hours"] += j.core_hours
    return out


def expected_controllers(window: str) -> dict[str, dict]:
    out = {}
    for name in ("dgx-01", "edge-02", "idle-03"):
        jobs = [j for j in jobs_in(window) if j.controller == name]
        every = [j.at for j in JOBS if j.controller == name]
        out[name] = {
            "handled": len(jobs),
            "running": sum(j.status == "running" for j in jobs),
            "completed": sum(j.status == "completed" for j in jobs),
            "core_hours": sum((j.core_hours for j in jobs), D(0)),
            "last_job_at": max(every, default=None),
        }
    return out


def expected_models(window: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for q in queries_in(window):
        row = out.setdefault(q.model, {"queries": 0, "tokens": 0, "credits": D(0)})
        row["queries"] += 1
        row["tokens"] += q.input_tokens + q.output_tokens
        row["credits"] += q.credits
    return out


def expected_groups(window: str, attribute: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for q in queries_in(window):
        row = out.setdefault(getattr(q, attribute), {"queries": 0, "tokens": 0})
        row["queries"] += 1
        row["tokens"] += q.input_tokens + q.output_tokens
    return out
