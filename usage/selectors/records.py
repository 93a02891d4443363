"""Reads for usage ingestion: jobs by client id, controllers, calendar-month tokens.

The usage panel's reads live in insights/selectors/panel.py. Every selector that reads an
organization's data takes the organization and filters by it.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from accounts.credentials import secret_hash
from accounts.models import Organization
from core.calendar import local_month_start, next_month, org_zone
from core.numbers import count_display, count_of
from usage.models import (
    TERMINAL_JOB_STATUSES,
    Controller,
    IngestBatch,
    Job,
    MatchingRun,
    Query,
    WorkerSession,
)


def month_to_date_tokens(*, org: Organization, at: datetime | None = None) -> int:
    """Tokens of the organization's queries in the current calendar month (its time zone)."""
    start = local_month_start(at or timezone.now(), tz=org_zone(org))
    total = Query.objects.filter(
        organization=org, occurred_at__gte=start, occurred_at__lt=next_month(start)
    ).aggregate(tokens=Sum("total_tokens"))["tokens"]
    return total or 0


def job_get(*, org: Organization, client_id: str) -> Job | None:
    """The organization's job with this client id, if any."""
    return (
        Job.objects.select_related("controller", "api_key")
        .filter(organization=org, client_id=client_id)
        .first()
    )


def controllers_of(*, org: Organization) -> QuerySet[Controller]:
    """The organization's controllers by name."""
    return Controller.objects.filter(organization=org)


def controller_for_token(*, token: str) -> Controller | None:
    """The controller whose token this is, with its organization; else None."""
    if not token or len(token) > 200:
        return None
    return (
        Controller.objects.select_related("organization")
        .filter(token_hash=secret_hash(token))
        .first()
    )


# --- What a ledger debit charged ("why did my balance drop") --------------------------


@dataclass(frozen=True)
class ChargeLine:
    """Records of one kind, model (or compute) and API key that a debit charged."""

    kind: str
    item: str  # the model, or "Managed compute" / the controller for jobs
    api_key: str  # the key's name, or "Unattributed"
    records: int
    credits: Decimal


@dataclass(frozen=True)
class Charges:
    """A usage debit's breakdown: its lines, and their total (equal to the debit)."""

    reference: str
    lines: list[ChargeLine]

    @property
    def credits(self) -> Decimal:
        return sum((line.credits for line in self.lines), Decimal("0"))

    @property
    def records(self) -> int:
        return sum(line.records for line in self.lines)


def _charge_lines(kind: str, rows, item_field: str, default_item: str) -> list[ChargeLine]:
    return [
        ChargeLine(
            kind=kind,
            item=row[item_field] or default_item,
            api_key=row["api_key__name"] or "Unattributed",
            records=row["records"],
            credits=row["credits"] or Decimal("0"),
        )
        for row in rows
    ]


def usage_batch_charges(*, org: Organization, batch_id: int) -> tuple[IngestBatch, Charges] | None:
    """The batch and what its ledger debit charged, by kind, model and key (4 queries)."""
    batch = IngestBatch.objects.filter(organization=org, pk=batch_id).first()
    if batch is None:
        return None
    figures = {"records": Count("id"), "credits": Sum("credits")}
    by_model = ("model__name", "api_key__name")
    lines = [
        *_charge_lines(
            "Query",
            Query.objects.filter(organization=org, batch=batch)
            .values(*by_model)
            .annotate(**figures)
            .order_by("model__name", "api_key__name"),
            "model__name",
            "",
        ),
        *_charge_lines(
            "Worker session",
            WorkerSession.objects.filter(organization=org, batch=batch)
            .values(*by_model)
            .annotate(**figures)
            .order_by("model__name", "api_key__name"),
            "model__name",
            "",
        ),
        # A job is charged by the batch that ended it, which may not be the one that
        # created it: follow the charge, not the batch foreign key.
        *_charge_lines(
            "Job",
            Job.objects.filter(organization=org, charge_reference=batch.ledger_key)
            .values("controller__name", "api_key__name")
            .annotate(**figures)
            .order_by("controller__name", "api_key__name"),
            "controller__name",
            "Managed compute",
        ),
        *_charge_lines(
            "Matching run",
            MatchingRun.objects.filter(organization=org, batch=batch)
            .values("task", "api_key__name")
            .annotate(**figures)
            .order_by("task", "api_key__name"),
            "task",
            "",
        ),
    ]
    return batch, Charges(reference=batch.ledger_key, lines=lines)


def job_charges(*, org: Organization, job_pk: int) -> tuple[Job, Charges] | None:
    """A job charged on its own when it ended (reference "job:<pk>")."""
    job = (
        Job.objects.select_related("controller", "api_key")
        .filter(organization=org, pk=job_pk)
        .first()
    )
    if job is None:
        return None
    line = ChargeLine(
        kind="Job",
        item=job.controller.name if job.controller else "Managed compute",
        api_key=job.api_key.name if job.api_key else "Unattributed",
        records=1,
        credits=job.credits,
    )
    return job, Charges(reference=f"job:{job.pk}", lines=[line])


@dataclass(frozen=True)
class BatchGap:
    """Why a batch's accepted records and its charge table's Total differ: a job is
    charged by the batch that ends it, not the one that first reported it."""

    accepted: int
    charged: int  # the table's Total row
    open_jobs: int  # reported here, still submitted or running: charged when they end
    ended_later: int  # reported here, charged by a later batch that ended them
    free_jobs: int  # reported here, ended with nothing to charge

    @property
    def updates(self) -> int:
        """Accepted records left over: updates to jobs already reported, which moved the
        job along without ending it."""
        return self.accepted - self.charged - self.open_jobs - self.ended_later - self.free_jobs

    @property
    def explanation(self) -> str:
        """One line saying why Total and accepted differ, "" when they agree."""
        if self.accepted == self.charged:
            return ""
        left_out = [
            text
            for n, text in (
                (self.open_jobs, f"{count_of(self.open_jobs, 'job')} still running "
                 "(charged by the batch that ends them)"),
                (self.ended_later, f"{count_of(self.ended_later, 'job')} charged by the "
                 "later batch that ended them"),
                (self.free_jobs, f"{count_of(self.free_jobs, 'job')} that ended with "
                 "nothing to charge"),
                (self.updates, f"{count_of(self.updates, 'update')} to jobs reported "
                 "before, which moved them along without ending them"),
            )
            if n > 0
        ]  # fmt: skip
        listed = ", ".join(left_out[:-1]) + (" and " if len(left_out) > 1 else "") + left_out[-1]
        return (
            f"Total counts the {count_of(self.charged, 'record')} this debit charged; of the "
            f"{count_display(self.accepted)} accepted, it leaves out {listed}."
        )


def usage_batch_gap(*, org: Organization, batch: IngestBatch, charges: Charges) -> BatchGap:
    """How the batch's accepted count and its charges' records relate (one query)."""
    reported_here = (
        Job.objects.filter(organization=org, batch=batch)
        .exclude(charge_reference=batch.ledger_key)
        .values_list("status", "charge_reference")
    )
    open_jobs = ended_later = free_jobs = 0
    for status, reference in reported_here:
        if status not in TERMINAL_JOB_STATUSES:
            open_jobs += 1
        elif reference:
            ended_later += 1
        else:
            free_jobs += 1
    return BatchGap(
        accepted=batch.accepted,
        charged=charges.records,
        open_jobs=open_jobs,
        ended_later=ended_later,
        free_jobs=free_jobs,
    )
