"""Replay lookups against usage_recordkey, the idempotency key of partitioned records.

On PostgreSQL the record tables are partitioned by month (usage.models.RecordKey says
why their own (organization, client_id) key cannot be unique any more), so ingestion
asks usage_recordkey whether an id was seen: one probe of its primary key per id, the
same whether the record's month is still kept or was dropped by retention. SQLite has
no partitions and keeps asking the record tables (ingest/services/ingest.py).
"""

from collections.abc import Iterable

from django.db import connection
from django.db.models import Model

from accounts.models import Organization
from usage.models import Job, MatchingRun, Query, RecordKind, WorkerSession, field_column

RECORD_KINDS: dict[type[Model], str] = {
    Query: RecordKind.QUERY,
    WorkerSession: RecordKind.WORKER_SESSION,
    MatchingRun: RecordKind.MATCHING,
    Job: RecordKind.JOB,
}


def record_keys_kept() -> bool:
    """Whether ids are kept in usage_recordkey (the record tables are partitioned)."""
    return connection.vendor == "postgresql"


# One probe of usage_recordkey's primary key per id: every column of the key equal, in a
# LATERAL ... LIMIT 1 the planner cannot flatten. The plain `client_id = ANY(...)` form
# lets a planner whose statistics have not seen a new organization yet (before ANALYZE)
# match only (organization_id, kind) and filter every key of the organization: measured
# at 5.6 s for 1,000 ids against a new organization's 200,000 keys, against ~10 ms here
# (manage.py bench_scale --only index).
_KEYS = (
    "FROM unnest(%s::text[]) AS ids(client_id) CROSS JOIN LATERAL ("
    "SELECT k.client_id, k.at FROM usage_recordkey AS k WHERE k.organization_id = %s "
    "AND k.kind = %s AND k.client_id = ids.client_id LIMIT 1) AS k"
)


def record_keys_stored(
    model: type[Model], org: Organization, client_ids: Iterable[str], *, text_array
) -> set[str]:
    """Which of these ids the organization ever stored a record of this kind for."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT k.client_id {_KEYS}",
            [text_array(client_ids), org.pk, RECORD_KINDS[model]],
        )
        return {client_id for (client_id,) in cursor.fetchall()}


def record_keys_jobs(
    org: Organization, client_ids: Iterable[str], *, text_array
) -> tuple[dict[str, Job], set[str]]:
    """The organization's stored jobs among these ids, by id, and every id it ever stored
    a job for, in one query: each key, then its job in the key's month partition by
    (organization, client_id, submitted_at). A job whose month retention dropped has a
    key and no row."""
    fields = list(Job._meta.concrete_fields)
    columns = ", ".join(f"j.{connection.ops.quote_name(field_column(f))}" for f in fields)
    sql = (
        f"SELECT k.client_id, {columns} {_KEYS} "  # noqa: S608
        "LEFT JOIN LATERAL (SELECT * FROM usage_job AS j WHERE j.organization_id = %s "
        "AND j.client_id = k.client_id AND j.submitted_at = k.at LIMIT 1) AS j ON true"
    )
    names = [f.attname for f in fields]
    at_id = names.index("id")
    jobs: dict[str, Job] = {}
    keys: set[str] = set()
    with connection.cursor() as cursor:
        cursor.execute(sql, [text_array(client_ids), org.pk, RECORD_KINDS[Job], org.pk])
        for client_id, *values in cursor.fetchall():
            keys.add(client_id)
            if values[at_id] is not None:
                jobs[client_id] = Job.from_db(connection.alias, names, values)
    return jobs, keys
