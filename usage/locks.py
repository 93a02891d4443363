"""The lock every writer of an organization's usage takes first: ingestion (ingest/),
a job's status move (ingest/services/jobs.py) and the rollups that rebuild its bucket
aggregates (rollups/). It lives here, below all of them, so none imports another for it."""

from django.db import DEFAULT_DB_ALIAS, connections

from accounts.models import Organization


def organization_usage_lock(org: Organization) -> None:
    """Serialize what writes this organization's usage: ingestion, job moves and the
    rollups that rebuild its bucket aggregates. Always taken first, before any rollup
    state row, so the two never wait on each other in opposite orders (a deadlock)."""
    no_key = connections[DEFAULT_DB_ALIAS].features.has_select_for_no_key_update
    list(Organization.objects.select_for_update(no_key=no_key).filter(pk=org.pk).values("pk"))
