"""Plain factory functions for tests: each makes one valid object with overridable fields."""

import itertools

from accounts.models import Membership, Organization, Role, Tier, User

PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)


def make_user(*, email: str | None = None, password: str = PASSWORD, **extra) -> User:
    n = next(_seq)
    return User.objects.create_user(
        email=email or f"user{n}@example.com", password=password, **extra
    )


def make_org(*, name: str | None = None, tier: str = Tier.STARTUP, **extra) -> Organization:
    from accounts.projects import project_default_for

    n = next(_seq)
    org = Organization.objects.create(
        name=name or f"Org {n}", slug=extra.pop("slug", f"org-{n}"), tier=tier, **extra
    )
    project_default_for(org=org)  # as organization_create does
    return org


def make_member(
    *, org: Organization | None = None, user: User | None = None, role: str = Role.OWNER
) -> Membership:
    return Membership.objects.create(
        organization=org or make_org(), user=user or make_user(), role=role
    )


def make_project(*, org=None, name: str | None = None, **extra):
    """An active project (not the Default one)."""
    from accounts.models import Project

    return Project.objects.create(
        organization=org or make_org(), name=name or f"Project {next(_seq)}", **extra
    )


# Usage ----------------------------------------------------------------------------------


def make_api_key(
    *, org=None, name: str = "Test key", kind: str = "workspace", user=None, project=None
):
    """A fresh API key (in the organization's Default project unless one is given);
    returns (key, secret)."""
    from accounts.services import apikey_create

    org = org or (project.organization if project is not None else make_org())
    issued = apikey_create(
        org=org,
        name=name,
        kind=kind,
        user=user,
        project=project,
    )
    return issued.key, issued.secret


def make_controller(
    *,
    org=None,
    name: str | None = None,
    cores: int = 64,
    memory_gb: int = 256,
    project=None,
):
    """A controller (in the Default project unless one is given); returns (controller, token)."""
    from usage.services.controllers import controller_register

    issued = controller_register(
        org=org or make_org(),
        name=name or f"ctl-{next(_seq)}",
        cores=cores,
        memory_gb=memory_gb,
        project=project,
    )
    return issued.controller, issued.token


def grant_credits(*, org, amount="1000", key: str | None = None):
    """Give an organization credits through the ledger (a grant)."""
    from decimal import Decimal

    from billing.services import ledger_post

    return ledger_post(
        org=org,
        kind="grant",
        amount=Decimal(str(amount)),
        reason="Test credits",
        idempotency_key=key or f"test-grant-{next(_seq)}",
    )


# ---- billing


def make_payment_method(*, org, number: str = "4242424242424242"):
    """A saved sandbox card for auto-recharge (4242…: succeeds, 4000…0002: declined)."""
    from billing.cards import CardDetails
    from billing.services import payment_method_save

    card = CardDetails(number=number, exp_month=12, exp_year=2099, cvc="123")
    return payment_method_save(org=org, card=card)


def make_payment(*, org, amount_minor: int = 2500, number: str = "4242424242424242", key=None):
    """A sandbox payment taken through prepare and confirm (succeeds with the default card)."""
    from billing.cards import CardDetails
    from billing.services import payment_confirm, payment_prepare

    card = CardDetails(number=number, exp_month=12, exp_year=2099, cvc="123")
    payment = payment_prepare(
        org=org,
        amount_minor=amount_minor,
        idempotency_key=key or f"test-payment-{next(_seq)}",
        card=card,
    )
    return payment_confirm(org=org, payment_id=payment.pk)


# ---- usage panel: rows written straight to the tables, for known figures


def _project_set(org, fields: dict) -> None:
    """A record's project as ingestion sets it: its key's, else the Default one."""
    if "project" in fields or "project_id" in fields:
        return
    key = fields.get("api_key")
    if key is not None:
        fields["project_id"] = key.project_id
    else:
        from accounts.projects import project_default_for

        fields["project"] = project_default_for(org=org)


def _aggregate(org, kind: str, record) -> None:
    """Add a row written straight to its table to the bucket aggregates, as ingestion
    does for the records it writes (pages read the buckets, not the records)."""
    from rollups.services.aggregates import aggregates_records_add

    aggregates_records_add(org=org, kind=kind, ids=[record.pk])


def make_job(*, org, submitted_at, status: str = "completed", cores: int = 1, **fields):
    """A job row as stored (no ingestion, no charge): core_hours and credits as given."""
    from decimal import Decimal

    from usage.models import Job

    fields.setdefault("client_id", f"job-{next(_seq)}")
    fields["core_hours"] = Decimal(str(fields.get("core_hours", "0")))
    fields["credits"] = Decimal(str(fields.get("credits", "0")))
    if status in ("completed", "failed", "cancelled"):
        fields.setdefault("ended_at", submitted_at)
    _project_set(org, fields)
    job = Job.objects.create(
        organization=org, submitted_at=submitted_at, status=status, cores=cores, **fields
    )
    _aggregate(org, "job", job)
    return job


def make_query(
    *, org, occurred_at, model: str = "llama-3.1-8b", input_tokens=10, output_tokens=20, **fields
):
    """A query row as stored (no ingestion, no charge)."""
    from decimal import Decimal

    from billing.models import PriceModel
    from usage.models import Query

    fields.setdefault("client_id", f"q-{next(_seq)}")
    fields["credits"] = Decimal(str(fields.get("credits", "0")))
    _project_set(org, fields)
    query = Query.objects.create(
        organization=org,
        model=PriceModel.objects.get(name=model),
        occurred_at=occurred_at,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        **fields,
    )
    _aggregate(org, "query", query)
    return query


def make_worker_session(*, org, started_at, ended_at, model: str = "llama-3.1-8b", **fields):
    """A worker session row as stored (no ingestion, no charge)."""
    from decimal import Decimal

    from billing.models import PriceModel
    from usage.models import WorkerSession

    fields.setdefault("client_id", f"w-{next(_seq)}")
    _project_set(org, fields)
    session = WorkerSession.objects.create(
        organization=org,
        model=PriceModel.objects.get(name=model),
        started_at=started_at,
        ended_at=ended_at,
        runtime_seconds=Decimal((ended_at - started_at).total_seconds()),
        **fields,
    )
    _aggregate(org, "worker_session", session)
    return session


# ---- alerts


def make_alert_rule(*, org, kind: str = "tokens", threshold="80", **fields):
    """An alert rule as stored (email on, no webhook unless given)."""
    from decimal import Decimal

    from alerts.models import AlertRule

    return AlertRule.objects.create(
        organization=org, kind=kind, threshold=Decimal(str(threshold)), **fields
    )
