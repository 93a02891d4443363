"""What ingestion reads before it decides: the controllers a batch names, and (phase 2,
under the organization's usage lock, usage/locks.py) which of its ids are stored already
and the tokens its months already hold."""

from collections.abc import Iterable

from django.db.models import Model, Sum
from django.db.models.functions import TruncMonth

from accounts.models import Organization
from core.calendar import next_month
from ingest.services.batch import MODELS, Batch, Candidate, Stored
from ingest.services.fields import RecordContext
from usage.models import Controller, Job, Query
from usage.services.record_keys import record_keys_jobs, record_keys_kept, record_keys_stored
from usage.text import encodable


def _stored_ids(model: type[Model], org: Organization, client_ids: Iterable[str]) -> set[str]:
    """Which of these ids the organization already has records of this kind for."""
    if record_keys_kept():  # partitioned tables: the key table (usage/services/record_keys.py)
        return record_keys_stored(model, org, client_ids, text_array=text_array)
    return set(
        model._default_manager.filter(organization=org, client_id__in=list(client_ids))
        .order_by()
        .values_list("client_id", flat=True)
    )


def _stored_jobs(org: Organization, client_ids: Iterable[str]) -> dict[str, Job]:
    """The organization's stored jobs among these ids, by id (where no key table is kept:
    SQLite)."""
    jobs = Job.objects.filter(organization=org, client_id__in=list(client_ids))
    return {job.client_id: job for job in jobs}


def text_array(values: Iterable[str]) -> str:
    """A PostgreSQL array literal of texts: each element quoted, its quotes and
    backslashes escaped (no NUL: validation refuses it)."""
    return (
        "{"
        + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
        + "}"
    )


def stored_look_up(org: Organization, batch: Batch) -> Stored:
    stored = Stored()
    for kind, by_id in batch.candidates.items():
        if not by_id:
            continue
        if kind == "job" and record_keys_kept():
            # A job's key outlives its row once retention drops its month.
            stored.jobs, stored.ids[kind] = record_keys_jobs(org, by_id, text_array=text_array)
        elif kind == "job":
            stored.jobs = _stored_jobs(org, by_id)
            stored.ids[kind] = set(stored.jobs)
        else:
            stored.ids[kind] = _stored_ids(MODELS[kind], org, by_id)
    return stored


def controllers_named(org: Organization, records: list) -> dict[str, Controller]:
    names = {
        r["controller"]
        for r in records
        if isinstance(r, dict) and r.get("kind") == "job" and isinstance(r.get("controller"), str)
    }
    # Looked up before validation: leave out names no query can carry (validation
    # rejects those records, naming the field).
    names = {name for name in names if "\x00" not in name and encodable(name)}
    if not names:
        return {}
    return {c.name: c for c in Controller.objects.filter(organization=org, name__in=names)}


def month_tokens_stored(
    org: Organization, ctx: RecordContext, queries: dict[str, Candidate]
) -> dict:
    """Tokens already stored per calendar month (org time) for the months this batch touches."""
    months = {c.month for c in queries.values() if c.month is not None}
    if not months:
        return {}
    start, end = min(months), next_month(max(months))
    rows = (
        Query.objects.filter(organization=org, occurred_at__gte=start, occurred_at__lt=end)
        .annotate(month=TruncMonth("occurred_at", tzinfo=ctx.zone))
        .values("month")
        .annotate(tokens=Sum("total_tokens"))
    )
    return {row["month"]: row["tokens"] or 0 for row in rows}
