"""The job lifecycle through the jobs endpoints: submit, then move along one step at a time.

submitted → running → completed | failed | cancelled (a submitted job may also fail or
be cancelled before it starts). Anything else is an illegal transition: nothing changes
and the caller learns the job's current state. A job is charged when it ends, in its own
ledger entry "job:<pk>", on the same organization lock as batch ingestion.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import APIKey, Organization
from billing.models import EntryKind
from billing.money import credits_text
from billing.selectors import credit_balance
from billing.services import InsufficientCredits, ledger_post
from core.errors import FieldError
from ingest.services.fields import max_future_skew
from ingest.services.ingest import Rejection, usage_records_ingest
from rollups.services.aggregates import aggregates_add, aggregates_jobs_subtract
from rollups.services.dirty import rollup_spans_mark_dirty
from usage.locks import organization_usage_lock
from usage.models import JOB_NEXT_STATUSES, TERMINAL_JOB_STATUSES, Job, JobStatus
from usage.pricing import (
    core_hours_for,
    core_hours_normalize,
    job_credits,
    price_book_load,
)
from usage.selectors.records import job_get


class JobTransitionIllegal(Exception):
    """The job cannot move to the requested status from where it is."""

    def __init__(self, job: Job, wanted: str):
        super().__init__(f"job {job.client_id!r} is {job.status}; it cannot become {wanted}")
        self.job = job
        self.wanted = wanted


class JobInvalid(FieldError):
    """A job submission or step refused as given; nothing was written."""


@dataclass(frozen=True)
class JobSubmitted:
    job: Job | None
    created: bool
    rejection: Rejection | None


@transaction.atomic
def job_submit(*, org: Organization, api_key: APIKey | None, record: dict) -> JobSubmitted:
    """Submit one job (a job record, status submitted unless given); a repeated id is a replay."""
    record = {**record, "kind": "job"}
    record.setdefault("status", JobStatus.SUBMITTED)
    result = usage_records_ingest(org=org, records=[record], api_key=api_key)
    if result.rejected:
        return JobSubmitted(job=None, created=False, rejection=result.rejected[0])
    job = job_get(org=org, client_id=record["id"])
    return JobSubmitted(job=job, created=bool(result.accepted), rejection=None)


def _transition_check(
    job: Job, *, status: str, at: datetime, core_hours: Decimal | None, now: datetime
) -> None:
    """JobInvalid or JobTransitionIllegal unless the job may take this step at `at`."""
    if status not in JobStatus.values:
        raise JobInvalid("status", f"must be one of {', '.join(JobStatus.values)}")
    if status not in JOB_NEXT_STATUSES.get(job.status, ()):
        raise JobTransitionIllegal(job, status)
    if at > now + max_future_skew():
        raise JobInvalid("at", "is in the future")
    if at < (job.started_at or job.submitted_at):
        raise JobInvalid("at", "must not be before the job's previous step")
    if core_hours is not None and status not in TERMINAL_JOB_STATUSES:
        raise JobInvalid("core_hours", "core-hours are reported when the job ends")


def _job_end_charge(
    org: Organization, job: Job, *, at: datetime, core_hours: Decimal | None
) -> None:
    """End the job at `at` with its core-hours (reported, or from its cores and run time)
    and their credits, and debit them once ("job:<pk>"); InsufficientCredits when the
    balance does not cover them and the organization may not overdraw."""
    job.ended_at = at
    job.core_hours = (
        core_hours_normalize(core_hours)
        if core_hours is not None
        else core_hours_for(cores=job.cores, started_at=job.started_at, ended_at=at)
    )
    rate = price_book_load().core_hour_rate(on_controller=job.controller_id is not None)
    job.credits = job_credits(core_hours=job.core_hours, rate=rate)
    if job.credits <= 0:
        return
    if not org.may_overdraw and credit_balance(org=org) < job.credits:
        raise InsufficientCredits(
            f"the job costs {credits_text(job.credits, exact=True)}; the balance does not cover it"
        )
    job.charge_reference = f"job:{job.pk}"
    ledger_post(
        org=org,
        kind=EntryKind.USAGE,
        amount=-job.credits,
        reason=f"Job {job.client_id} {job.status}",
        idempotency_key=job.charge_reference,
        reference=job.charge_reference,
    )


@transaction.atomic
def job_transition(
    *,
    org: Organization,
    client_id: str,
    status: str,
    at: datetime | None = None,
    core_hours: Decimal | None = None,
) -> Job:
    """Move a job one legal step and, when it ends, charge it once ("job:<pk>").

    Raises Job.DoesNotExist, JobTransitionIllegal, JobInvalid or InsufficientCredits;
    nothing is written then.
    """
    organization_usage_lock(org)
    job = job_get(org=org, client_id=client_id)
    if job is None:
        raise Job.DoesNotExist(client_id)
    now = timezone.now()
    at = at or now
    _transition_check(job, status=status, at=at, core_hours=core_hours, now=now)
    job.status = status
    job.updated_at = now
    if status == JobStatus.RUNNING:
        job.started_at = at
    else:
        _job_end_charge(org, job, at=at, core_hours=core_hours)
    # Its buckets hold the old status: its figures come off before and on after.
    aggregates_jobs_subtract(org=org, job_ids=[job.pk], now=now)
    job.save()
    aggregates_add(org=org, kinds=("job",), job_ids=[job.pk], now=now)
    # Its submission day's and hour's rollups hold the old status: recompute them if that
    # day is closed, or that hour finished.
    rollup_spans_mark_dirty(org=org, spans=[(job.submitted_at, job.submitted_at)])
    return job
