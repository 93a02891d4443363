"""Usage in three projects of one organization, written as ingestion stores it (each
record in its key's project, added to the bucket aggregates) and then rolled up (the past
days read from the rollups, the open day from the buckets): the pages read every source.
The expected figures come straight from the records (`records_sum`), never from a
selector of the pages."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from django.db.models import Count, Q, Sum

from accounts.models import Role
from billing.services import ledger_post
from rollups.services.days import rollup_catch_up
from tests.factories import (
    make_api_key,
    make_controller,
    make_job,
    make_member,
    make_org,
    make_project,
    make_query,
    make_worker_session,
)
from usage.models import Job, Query, WorkerSession

NOW = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)
PROJECTS = ("Default", "Research", "Production app")
MODELS = ("llama-3.1-8b", "llama-3.1-70b")


def seed() -> dict:
    """An owner's organization (UTC) with three projects, a key and a controller in each,
    and usage of each project at different sizes: in the open hour, days ago (rolled up),
    last month and last year. Returns the organization, its owner and, per project name,
    the project, its key and its controller."""
    owner = make_member(org=make_org(name="Tri"), role=Role.OWNER)
    org = owner.organization
    default = org.projects.get(is_default=True)
    projects = [default, make_project(org=org, name=PROJECTS[1])]
    projects.append(make_project(org=org, name=PROJECTS[2]))
    world = {"org": org, "owner": owner, "projects": {}}
    for i, project in enumerate(projects):
        key, _ = make_api_key(org=org, project=project, name=f"key-{project.name}")
        controller, _ = make_controller(org=org, project=project, name=f"ctl-{i}")
        world["projects"][project.name] = {"project": project, "key": key, "ctl": controller}
        _usage(org, i + 1, key, controller)
    rollup_catch_up(org=org, now=NOW)
    # The ledger's usage debits, when the usage was charged (the organization's figures).
    start = datetime(2025, 1, 1, tzinfo=UTC)
    ledger_post(
        org=org, kind="grant", amount=D(1000), reason="start", idempotency_key="g", at=start
    )
    for n, (at, credits) in enumerate(sorted(_charges(org))):
        ledger_post(
            org=org, kind="usage", amount=-credits, reason="usage", idempotency_key=f"u{n}", at=at
        )
    return world


def _usage(org, m: int, key, controller) -> None:
    """Project number m's usage: m times the first project's, give or take."""
    for n in range(m):
        make_job(
            org=org,
            submitted_at=NOW - timedelta(minutes=30 + n),
            api_key=key,
            core_hours=D("1.5"),
            credits=D("0.75"),
        )
    make_job(
        org=org,
        submitted_at=NOW - timedelta(days=3),
        api_key=key,
        status="failed",
        core_hours=D("0.5") * m,
        credits=D("0.25") * m,
    )
    make_job(
        org=org,
        submitted_at=NOW - timedelta(days=1, hours=2),
        api_key=key,
        controller=controller,
        core_hours=D(2 * m),
        credits=D(m),
    )
    make_job(
        org=org, submitted_at=NOW - timedelta(days=40), api_key=key, core_hours=m, credits=D("0.5")
    )
    make_query(
        org=org,
        occurred_at=NOW - timedelta(hours=2),
        api_key=key,
        model=MODELS[0],
        input_tokens=100 * m,
        output_tokens=10 * m,
        credits=D("0.011") * m,
        endpoint=f"/v1/chat-{m}",
        member=f"dev{m}@tri.example",
    )
    make_query(
        org=org,
        occurred_at=NOW - timedelta(days=5),
        api_key=key,
        model=MODELS[1],
        input_tokens=1000 * m,
        output_tokens=7,
        credits=D("0.2"),
        endpoint="/v1/chat",
        member=f"dev{m}@tri.example",
    )
    make_query(
        org=org,
        occurred_at=datetime(2026, 10, 9, 8, tzinfo=UTC),
        api_key=key,
        model=MODELS[1],
        input_tokens=50 * m,
        output_tokens=5,
        credits=D("0.05") * m,
    )
    make_query(
        org=org,
        occurred_at=datetime(2025, 6, 1, 8, tzinfo=UTC),
        api_key=key,
        model=MODELS[0],
        input_tokens=3 * m,
        output_tokens=m,
        credits=D("0.003"),
    )
    make_worker_session(
        org=org,
        api_key=key,
        started_at=NOW - timedelta(hours=3),
        ended_at=NOW - timedelta(hours=3) + timedelta(minutes=10 * m),
        credits=D("0.3") * m,
    )
    october = datetime(2026, 10, 20, 9, tzinfo=UTC)
    make_worker_session(org=org, api_key=key, model=MODELS[1], started_at=october,
                        ended_at=october + timedelta(hours=m), credits=D(m))  # fmt: skip


def _charges(org) -> list[tuple[datetime, D]]:
    """Every record's credits, charged when it happened (grouped per hour)."""
    charges = []
    for model, field in ((Job, "submitted_at"), (Query, "occurred_at"),
                         (WorkerSession, "started_at")):  # fmt: skip
        charges += list(model.objects.filter(organization=org).values_list(field, "credits"))
    return [(at, credits) for at, credits in charges if credits]


def records_sum(model, *, org, projects=None, **where) -> dict:
    """Figures summed straight from the records (the reference)."""
    rows = model.objects.filter(organization=org, **where)
    if projects is not None:
        rows = rows.filter(project__in=projects)
    if model is Job:
        failed = Q(status__in=["failed", "cancelled"])
        return rows.aggregate(
            submitted=Count("id"),
            failed=Count("id", filter=Q(status="failed")),
            managed=Sum("core_hours", filter=Q(controller__isnull=True), default=D(0)),
            byoc=Sum("core_hours", filter=Q(controller__isnull=False), default=D(0)),
            on_controllers=Count("id", filter=Q(controller__isnull=False)),
            wasted=Sum("credits", filter=failed, default=D(0)),
        )
    if model is Query:
        return rows.aggregate(
            queries=Count("id"),
            tokens=Sum("total_tokens", default=0),
            credits=Sum("credits", default=D(0)),
        )
    return rows.aggregate(sessions=Count("id"), credits=Sum("credits", default=D(0)))
