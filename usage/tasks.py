"""Celery tasks for the records. The name keeps the `usage.` prefix it was published with
(the beat schedule and queued messages carry it)."""

from celery import shared_task
from django.db import OperationalError

from usage.services.partitions import partitions_make_ahead


@shared_task(
    name="usage.partitions_ahead",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def partitions_ahead_run() -> int:
    """Make the raw record tables' monthly partitions for this month and the next few
    where missing (PostgreSQL; nothing on SQLite). Idempotent."""
    return len(partitions_make_ahead())
