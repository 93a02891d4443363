"""Batch ingestion of usage records: validate each, store the good ones, charge them once.

The whole batch is set-based: the records are validated in Python, then a fixed number
of queries does the rest whatever the batch size (one lookup per kind for replays,
one COPY per kind on PostgreSQL or one multi-row INSERT elsewhere, one bulk update of
jobs moving forward, one ledger debit), all in one transaction.

Concurrency: batches of one organization are serialized by a row lock on the
organization (FOR NO KEY UPDATE, which does not block foreign-key checks), taken
before replays are looked up, so two overlapping batches can never both insert the
same id, and the balance read for the no-overdraft check cannot move under us.

Money: every record's credits are rounded once; the batch's single ledger entry
("usage-batch:<id>") is minus their exact sum. A debit an organization that may not
overdraw cannot pay is not written: the records that do not fit in the balance are
rejected with field "credits" (in record order: a record is accepted while the
balance still covers it), the rest of the batch goes through.

Rollups: records landing on a closed day (before today in the organization's zone) or a
finished hour, and jobs moving forward (their submission day and hour), mark those days
and hours dirty in the same transaction (one upsert each); the next rollup runs
recompute them (rollups/services/). The records are also added to the bucket
aggregates the pages read (rollups/services/aggregates.py): one upsert per kind written,
and for jobs moving forward one more that takes their old figures off first.

Token allocation: an organization whose tier allows no overage (free) has each query
checked against its calendar month's allocation (in its time zone); a query that passes
it is stored and charged only for the tokens within it (spend/services/settlement.py,
`allocation_overrun`). Refusing queries over the allocation is the gateway's job, before
they run: `authorize` answers 402 `allocation_exhausted` (docs/spend-controls.md).
"""

import logging
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from accounts.models import APIKey, Organization
from billing.money import credits_text
from billing.selectors import credit_balance
from core.errors import FieldError
from ingest.services.batch import (
    KINDS,
    MAX_BATCH_RECORDS,
    Batch,
    Candidate,
    Decision,
    IngestResult,
    Rejection,
    Stored,
)
from ingest.services.fields import (
    RecordContext,
    job_values,
    matching_values,
    query_values,
    query_values_fast,
    storable_text_check,
    text_field,
    worker_session_values,
)
from ingest.services.lookup import controllers_named, month_tokens_stored, stored_look_up
from ingest.services.write import batch_write
from spend.services.settlement import SpendBatch
from spend.services.spend_counters import BalanceTake
from usage.limits import MAX_CORE_HOURS
from usage.locks import organization_usage_lock
from usage.members import key_owner
from usage.models import (
    CLIENT_ID_MAX,
    TERMINAL_JOB_STATUSES,
    Job,
    job_status_reachable,
)
from usage.pricing import (
    PriceBook,
    core_hours_for,
    core_hours_normalize,
    job_credits,
    price_book_load,
)
from usage.services.retention import retention_ingest_horizon, retention_refusal

logger = logging.getLogger(__name__)


def _job_charge(values: dict, prices: PriceBook) -> tuple[Decimal, Decimal]:
    """Billed core-hours and credits of a job that has just ended."""
    if values["core_hours"] is not None:
        core_hours = core_hours_normalize(values["core_hours"])
    else:
        core_hours = core_hours_for(
            cores=values["cores"], started_at=values["started_at"], ended_at=values["ended_at"]
        )
    rate = prices.core_hour_rate(on_controller=values["controller"] is not None)
    return core_hours, job_credits(core_hours=core_hours, rate=rate)


# The service -----------------------------------------------------------------------------


def usage_records_ingest(
    *,
    org: Organization,
    records: list,
    api_key: APIKey | None = None,
    charged_at: datetime | None = None,
) -> IngestResult:
    """Store a batch's good records and charge them in one ledger debit; replays change nothing.

    `records` is the wire batch's list; no key means unattributed. `charged_at` dates the
    debit (imports and the demo's history; default now). Four phases: validate (no
    database work), look up what is stored (under the organization's lock), decide each
    record in order, write.
    """
    take = BalanceTake()
    try:
        return _ingest(org=org, records=records, api_key=api_key, charged_at=charged_at, take=take)
    except BaseException:
        # The transaction (or its commit) failed: credits taken from the spend counters
        # for it go back, so none stays lost until a rebuild.
        take.give_back()
        raise
    finally:
        take.close()


@transaction.atomic
def _ingest(
    *,
    org: Organization,
    records: list,
    api_key: APIKey | None,
    charged_at: datetime | None,
    take: BalanceTake,
) -> IngestResult:
    """usage_records_ingest's transaction."""
    started = time.monotonic()
    if len(records) > MAX_BATCH_RECORDS:
        raise ValueError(f"at most {MAX_BATCH_RECORDS} records per batch")
    result = IngestResult()
    ctx = RecordContext(
        org=org, prices=price_book_load(), controllers=controllers_named(org, records)
    )
    batch = _validate(records, ctx=ctx, default_member=_default_member(api_key), result=result)
    if batch.order:
        organization_usage_lock(org)
        spend = SpendBatch.begin(org=org, queries=batch.candidates["query"], now=ctx.now, take=take)
        stored = stored_look_up(org, batch)
        decision = _decide(org, ctx, batch, stored, result, spend=spend)
        spend.spend(decision.total)
        if result.accepted:
            stored_batch = batch_write(
                org, ctx, decision, result, api_key=api_key, charged_at=charged_at
            )
            spend.settle(
                new=decision.new,
                job_updates=decision.job_updates,
                batch=stored_batch,
                api_key=api_key,
                at=charged_at,
            )
    _log(org, api_key, result, started)
    return result


def _default_member(api_key: APIKey | None) -> str:
    """A personal key's owner: all its usage is theirs (usage/members.py)."""
    return key_owner(api_key)


# Phase 1: validate every record (no database work) -----------------------------------------


def _validate(
    records: list, *, ctx: RecordContext, default_member: str, result: IngestResult
) -> Batch:
    batch = Batch(candidates={kind: {} for kind in KINDS})
    for index, record in enumerate(records):
        candidate = _candidate(index, record, ctx, default_member, batch, result)
        if candidate is None:
            continue
        kind, client_id = candidate.kind, candidate.client_id
        if kind == "job" and client_id in batch.candidates["job"]:
            conflict = _job_batch_merge(batch.candidates["job"][client_id], candidate, result)
            if conflict is not None:
                result.rejected.append(Rejection(index, client_id, "status", conflict))
            continue
        batch.candidates[kind][client_id] = candidate
        batch.order.append((index, kind, client_id))
    return batch


def _record_id(record: dict) -> tuple[str, str]:
    """The record's id and its kind, or FieldError naming the field."""
    raw_id = record.get("id")
    client_id = raw_id if isinstance(raw_id, str) else None
    if raw_id is None:
        raise FieldError("id", "is required")
    if client_id is None:
        raise FieldError("id", f"must be a string, not {type(raw_id).__name__}")
    if not client_id.strip() or len(client_id) > CLIENT_ID_MAX:
        raise FieldError("id", f"must be 1 to {CLIENT_ID_MAX} characters")
    storable_text_check("id", client_id)
    kind = record.get("kind")
    if kind not in KINDS:
        raise FieldError("kind", f"must be one of {', '.join(KINDS)}")
    if kind == "job" and "/" in client_id:
        raise FieldError("id", "a job id must not contain '/' (it goes in a URL path)")
    return client_id, kind


def _candidate(
    index: int,
    record: Any,
    ctx: RecordContext,
    default_member: str,
    batch: Batch,
    result: IngestResult,
) -> Candidate | None:
    """One record parsed into a candidate; None (noted in result) when it is rejected or
    repeats an id already in the batch (the first one counts)."""
    if not isinstance(record, dict):
        result.rejected.append(Rejection(index, None, None, "must be a JSON object"))
        return None
    raw_id = record.get("id")
    try:
        client_id, kind = _record_id(record)
        if client_id in batch.candidates[kind] and kind != "job":
            result.duplicates.append(client_id)
            return None
        candidate = Candidate(index=index, kind=kind, client_id=client_id, values={})
        _parse_into(candidate, record, ctx, default_member)
    except FieldError as invalid:
        rejected_id = raw_id if isinstance(raw_id, str) else None
        result.rejected.append(Rejection(index, rejected_id, invalid.field, invalid.error))
        return None
    return candidate


def _parse_into(
    candidate: Candidate, record: dict, ctx: RecordContext, default_member: str
) -> None:
    if candidate.kind == "query":
        # Most records are clean queries: checked once in C and a few lookups; any doubt
        # and the field-by-field checks below decide, naming the field.
        fast = query_values_fast(ctx, record, default_member)
        if fast is not None:
            candidate.values, candidate.credits, candidate.tokens, candidate.reservation = fast
        else:
            candidate.values, candidate.credits, candidate.tokens = query_values(
                ctx, record, default_member
            )
            candidate.reservation = (
                text_field(record, "reservation", max_length=40, required=False) or ""
            )
        candidate.month = ctx.month_of(candidate.values["occurred_at"])
    elif candidate.kind == "worker_session":
        candidate.values, candidate.credits = worker_session_values(ctx, record)
    elif candidate.kind == "matching":
        candidate.values = matching_values(ctx, record)
    else:
        candidate.values = job_values(ctx, record)


# Phase 3: decide each candidate in record order: new, a forward job move, or a replay ----


class _Limits:
    """The organization's monthly token allocation (free tier) and its balance (no
    overdraft, less what reservations hold), as the batch uses them up in record order.
    A query past the allocation is stored and charged only for the tokens within it."""

    def __init__(
        self,
        org: Organization,
        ctx: RecordContext,
        queries: dict[str, Candidate],
        spend: SpendBatch,
        *,
        need: Decimal,
    ):
        self.org = org
        self.spend = spend
        self.allocation = org.monthly_token_allocation
        self.check_allocation = self.allocation is not None and not org.overage_allowed
        self.month_tokens = month_tokens_stored(org, ctx, queries) if self.check_allocation else {}
        self.check_credits = not org.may_overdraw
        self.available = (
            spend.available(credit_balance(org=org), need=need)
            if self.check_credits
            else Decimal("0")
        )

    def refusal(self, c: Candidate, total: Decimal, result: IngestResult) -> Rejection | None:
        """Why the candidate does not fit (tokens or credits), or None when it does."""
        if self.check_allocation and c.kind == "query":
            assert self.allocation is not None and c.month is not None
            used = self.month_tokens.get(c.month, 0)
            if used + c.tokens > self.allocation:
                c.credits = self.spend.allocation_overrun(c, used=used, allocation=self.allocation)
        if self.check_credits and c.credits > 0 and total + c.credits > self.available:
            return Rejection(
                c.index,
                c.client_id,
                "credits",
                f"insufficient credits: this record costs {credits_text(c.credits, exact=True)}, "
                f"{credits_text(max(self.available - total, Decimal(0)), exact=True)} left; "
                "add credits",
            )
        return None

    def use(self, c: Candidate) -> None:
        if self.check_allocation and c.kind == "query":
            assert c.month is not None
            self.month_tokens[c.month] = self.month_tokens.get(c.month, 0) + c.tokens


def _decide(
    org: Organization,
    ctx: RecordContext,
    batch: Batch,
    stored: Stored,
    result: IngestResult,
    *,
    spend: SpendBatch,
) -> Decision:
    horizon = retention_ingest_horizon(batch.candidates, zone=ctx.zone, now=ctx.now)
    decision = Decision()
    refused: list[Rejection] = []
    # First what may be written at all, then the limits over those in record order (the
    # credits are taken once, for at most what they can cost together).
    writable: list[tuple[Candidate, Job | None]] = []
    for _index, kind, client_id in batch.order:
        c = batch.candidates[kind][client_id]
        job = stored.jobs.get(client_id) if kind == "job" else None
        verdict = _replay_or_move(c, job, stored, ctx.prices)
        if verdict == "duplicate":
            result.duplicates.append(client_id)
            continue
        if isinstance(verdict, Rejection):
            refused.append(verdict)
            continue
        too_old = retention_refusal(kind, c.values, horizon) if job is None else None
        if too_old is not None:  # a day whose raw records retention dropped
            refused.append(Rejection(c.index, client_id, *too_old))
            continue
        writable.append((c, job))
    need = sum((c.credits for c, _job in writable if c.credits > 0), Decimal(0))
    limits = _Limits(org, ctx, batch.candidates["query"], spend, need=need)
    for c, job in writable:
        client_id = c.client_id
        refusal = limits.refusal(c, decision.total, result)
        if refusal is not None:
            refused.append(refusal)
            continue
        limits.use(c)
        decision.total += c.credits
        result.tokens += c.tokens
        result.accepted.append(client_id)
        if job is not None:
            decision.job_updates.append((job, c))
        else:
            decision.new[c.kind].append(c)
    result.rejected.extend(refused)
    result.rejected.sort(key=lambda r: r.index)
    return decision


def _replay_or_move(
    c: Candidate, job: Job | None, stored: Stored, prices: PriceBook
) -> str | Rejection | None:
    """ "duplicate" for a replay, a Rejection for a job move that may not happen (or a run
    too long to bill), None for a record to write (new, or a job moving forward; a job
    reaching its end is charged here)."""
    if c.kind != "job":
        return "duplicate" if c.client_id in stored.ids.get(c.kind, ()) else None
    if job is None and c.client_id in stored.ids.get("job", ()):
        return "duplicate"  # its key is kept while retention dropped its month's rows
    if job is not None:
        verdict = _job_forward(job, c.values)
        if verdict is None:
            return "duplicate"
        if verdict != "ok":
            return Rejection(c.index, c.client_id, "status", verdict)
    if c.values["status"] not in TERMINAL_JOB_STATUSES:
        c.values["core_hours"] = None
        return None
    c.values["core_hours"], c.credits = _job_charge(_merged_job_values(job, c.values), prices)
    if c.values["core_hours"] > MAX_CORE_HOURS:  # cores × a very long run
        return Rejection(
            c.index,
            c.client_id,
            "core_hours",
            f"cores × wall-clock hours is over {MAX_CORE_HOURS:,} core-hours",
        )
    return None


def _job_step(current: str, wanted: str) -> str:
    """Where a reported status stands against the job's: "behind" (the same, or one the
    job has passed: a replay or a stale record), "forward", or "conflict" (another end)."""
    if current == wanted or job_status_reachable(wanted, current):
        return "behind"
    return "forward" if job_status_reachable(current, wanted) else "conflict"


def _job_batch_merge(earlier: Candidate, later: Candidate, result: IngestResult) -> str | None:
    """A second record for a job already in this batch: a later status moves the batch's
    job forward (as it would a stored job: the first record's submission time stays, the
    start and controller carry over unless the later record gives them); an equal or
    earlier status is a duplicate. Returns why the two conflict (two different ends),
    else None. The merged record keeps the first one's place in the batch."""
    now, wanted = earlier.values["status"], later.values["status"]
    step = _job_step(now, wanted)
    if step == "behind":
        result.duplicates.append(later.client_id)
        return None
    if step == "conflict":
        return (
            f"job {later.client_id!r} already ended {now} in this batch; it cannot become {wanted}"
        )
    earlier.values = {
        **later.values,
        "submitted_at": earlier.values["submitted_at"],
        "started_at": later.values["started_at"] or earlier.values["started_at"],
        "controller": later.values["controller"] or earlier.values["controller"],
    }
    return None


def _merged_job_values(job: Job | None, values: dict) -> dict:
    if job is None:
        return values
    return {
        **values,
        "started_at": values["started_at"] or job.started_at,
        "controller": values["controller"] or job.controller,
    }


def _job_forward(job: Job, values: dict) -> str | None:
    """None for a replay or a stale record; "ok" to move forward; else why it conflicts."""
    current, wanted = job.status, values["status"]
    step = _job_step(current, wanted)
    if step == "behind":
        return None
    if step == "conflict":  # two different ends
        return (
            f"job {job.client_id!r} already ended {job.status}; it cannot become {values['status']}"
        )
    return "ok"


def _log(org: Organization, api_key: APIKey | None, result: IngestResult, started: float) -> None:
    logger.info(
        "usage.ingest.batch",
        extra={
            "org": org.pk,
            "api_key": api_key.pk if api_key else None,
            "batch": result.batch_id,
            "accepted": len(result.accepted),
            "duplicates": len(result.duplicates),
            "rejected": len(result.rejected),
            "credits": str(result.credits),
            "tokens": result.tokens,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        },
    )


__all__ = [
    "MAX_BATCH_RECORDS",
    "MAX_CORE_HOURS",
    "IngestResult",
    "Rejection",
    "usage_records_ingest",
]
