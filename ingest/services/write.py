"""Ingestion's phase 4: write the batch row, its new records (COPY on PostgreSQL), the
forward job moves, the aggregates and dirty marks, and the one ledger debit that charges
the batch. Called by ingest/services/ingest.py inside its transaction."""

from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Model

from accounts.models import APIKey, Organization
from accounts.projects import project_default_for
from billing.models import EntryKind
from billing.services import ledger_post
from core.numbers import count_of
from ingest.services.batch import KINDS, MODELS, Candidate, Decision, IngestResult
from ingest.services.fields import (
    RecordContext,
)
from rollups.services.aggregates import aggregates_add, aggregates_jobs_subtract
from rollups.services.dirty import rollup_spans_mark_dirty
from usage.models import (
    IngestBatch,
    Job,
    field_column,
)


def batch_write(
    org: Organization,
    ctx: RecordContext,
    decision: Decision,
    result: IngestResult,
    *,
    api_key: APIKey | None,
    charged_at: datetime | None,
) -> IngestBatch:
    # docs/projects.md: the project comes from the credential, never from the records.
    project_id = api_key.project_id if api_key is not None else project_default_for(org=org).pk
    batch = IngestBatch.objects.create(
        organization=org,
        api_key=api_key,
        project_id=project_id,
        received_at=ctx.now,
        accepted=len(result.accepted),
        duplicates=len(result.duplicates),
        rejected=len(result.rejected),
        credits=decision.total,
    )
    new, job_updates = decision.new, decision.job_updates
    moved = [job.pk for job, _c in job_updates]
    # Bucket aggregates: moved jobs' old figures off, then every written row's on.
    aggregates_jobs_subtract(org=org, job_ids=moved, now=ctx.now)
    _records_insert(new, org=org, api_key=api_key, batch=batch, now=ctx.now)
    if job_updates:
        _jobs_move_forward(job_updates, batch=batch, now=ctx.now)
    touched = tuple(k for k in KINDS if new.get(k) or (k == "job" and moved))
    aggregates_add(
        org=org,
        batch_id=batch.pk,
        kinds=touched,
        job_ids=moved,
        now=ctx.now,
        spans=_partition_spans(new),
    )
    rollup_spans_mark_dirty(org=org, spans=_spans_touched(new, job_updates), now=ctx.now)
    if decision.total > 0:
        ledger_post(
            org=org,
            kind=EntryKind.USAGE,
            amount=-decision.total,
            reason=f"Usage: {count_of(len(result.accepted), 'record')}",
            idempotency_key=batch.ledger_key,
            reference=batch.ledger_key,
            at=charged_at,
        )
    result.batch_id = batch.pk
    result.credits = decision.total
    return batch


def _records_insert(
    new: dict[str, list[Candidate]],
    *,
    org: Organization,
    api_key: APIKey | None,
    batch: IngestBatch,
    now: datetime,
) -> None:
    """Insert the batch's new records: one COPY per kind on PostgreSQL, one bulk INSERT
    per kind elsewhere (SQLite), inside the caller's transaction."""
    common = {
        "organization_id": org.pk,
        "api_key_id": api_key.pk if api_key is not None else None,
        "batch_id": batch.pk,
        "project_id": batch.project_id,
        "created_at": now,
    }
    for kind, items in new.items():
        if not items:
            continue
        rows = [_row(kind, c, common, batch=batch, now=now) for c in items]
        model = MODELS[kind]
        if connection.vendor == "postgresql":
            _copy(model, rows)
        else:
            model._default_manager.bulk_create([model(**row) for row in rows], batch_size=500)


def _row(kind: str, c: Candidate, common: dict, *, batch: IngestBatch, now: datetime) -> dict:
    """A new record's column values by attribute name (foreign keys as ids)."""
    row = {**common, **c.values, "client_id": c.client_id, "credits": c.credits}
    if kind == "job":
        controller = row.pop("controller")
        row["controller_id"] = controller.pk if controller is not None else None
        if batch.api_key_id is None and controller is not None:
            # Sent without a key (an operator tool): the job is its controller's project's.
            row["project_id"] = controller.project_id
        row["core_hours"] = row["core_hours"] or Decimal(0)
        row["updated_at"] = now
        row["charge_reference"] = batch.ledger_key if c.credits else ""
    elif kind in ("query", "worker_session"):
        row["model_id"] = row.pop("model").pk
    return row


def _copy(model: type[Model], rows: list[dict]) -> None:
    """COPY rows (dicts by attribute name) into the model's table, in one statement.

    Every column is written: a field the rows leave out takes its model default,
    computed once; a field with neither fails loudly here, before any row is sent.
    """
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    defaults = {f.attname: f.get_default() for f in fields if f.has_default()}
    names = [f.attname for f in fields]
    missing = [n for n in names if n not in rows[0] and n not in defaults]
    if missing:
        raise ValueError(f"{model.__name__} rows lack {', '.join(missing)}")
    quote = connection.ops.quote_name
    sql = (
        f"COPY {quote(model._meta.db_table)} "
        f"({', '.join(quote(field_column(f)) for f in fields)}) FROM STDIN"
    )
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.copy(sql) as copy,
    ):
        for row in rows:
            copy.write_row([row[n] if n in row else defaults[n] for n in names])


_PARTITION_TIME = {
    "query": "occurred_at",
    "worker_session": "started_at",
    "matching": "started_at",
    "job": "submitted_at",
}


def _partition_spans(new: dict[str, list[Candidate]]) -> dict[str, tuple[datetime, datetime]]:
    """By kind, the first and last partition time of the batch's new records (the month
    partitions the bucket upsert has to read)."""
    spans = {}
    for kind, items in new.items():
        if items:
            times = [c.values[_PARTITION_TIME[kind]] for c in items]
            spans[kind] = (min(times), max(times))
    return spans


def _spans_touched(
    new: dict[str, list[Candidate]], job_updates: list[tuple[Job, Candidate]]
) -> set[tuple[datetime, datetime]]:
    """The [start, end] spans whose rollups the batch changes (their closed days and
    finished hours are marked dirty)."""
    spans: set[tuple[datetime, datetime]] = set()
    for kind, items in new.items():
        for c in items:
            v = c.values
            if kind == "query":
                spans.add((v["occurred_at"], v["occurred_at"]))
            elif kind == "job":
                spans.add((v["submitted_at"], v["submitted_at"]))
            elif kind == "worker_session":
                spans.add((v["started_at"], v["ended_at"]))
            else:
                spans.add((v["started_at"], v["started_at"]))
    for job, _c in job_updates:
        spans.add((job.submitted_at, job.submitted_at))
    return spans


def _jobs_move_forward(updates: list[tuple[Job, Candidate]], *, batch: IngestBatch, now) -> None:
    jobs = []
    for job, c in updates:
        v = c.values
        job.status = v["status"]
        job.cores = v["cores"]
        if v["controller"] is not None:
            job.controller = v["controller"]
        job.started_at = v["started_at"] or job.started_at
        job.ended_at = v["ended_at"]
        if v["core_hours"] is not None:
            job.core_hours = v["core_hours"]
        job.credits = c.credits
        if c.credits:
            job.charge_reference = batch.ledger_key
        job.updated_at = now
        jobs.append(job)
    Job.objects.bulk_update(
        jobs,
        [
            "status",
            "cores",
            "controller",
            "started_at",
            "ended_at",
            "core_hours",
            "credits",
            "charge_reference",
            "updated_at",
        ],
        batch_size=500,
    )
