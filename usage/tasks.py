"""Celery tasks for usage: thin wrappers taking ids and ISO dates.

Acknowledged late and retried with backoff; running one twice, or two at once, is safe
(a day's or an hour's recomputation is idempotent and serialized by its state row's
lock).
"""

from celery import shared_task
from django.db import OperationalError


@shared_task(
    name="usage.rollup_day",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def rollup_day_run(org_id: int, day: str) -> int:
    """Recompute one organization's closed day (ISO date); returns the rows written."""
    from datetime import date

    from accounts.models import Organization
    from usage.services.rollup import rollup_day

    org = Organization.objects.filter(pk=org_id).first()
    if org is None:  # deleted since: nothing to roll up
        return 0
    return rollup_day(org=org, day=date.fromisoformat(day)).rows


@shared_task(name="usage.rollup_sweep", acks_late=True)
def rollup_sweep() -> int:
    """Enqueue a rollup for every due org-day (yesterday, dirty and re-zoned days)."""
    from usage.services.rollup import rollup_due

    due = rollup_due()
    for org_id, day in due:
        rollup_day_run.delay(org_id, day.isoformat())
    return len(due)


@shared_task(
    name="usage.rollup_hour",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def rollup_hour_run(org_id: int, day: str, hour: int) -> int:
    """Recompute one finished hour of an organization's day (ISO date, hour counted from
    the day's first instant); returns the rows written."""
    from datetime import date

    from accounts.models import Organization
    from usage.services.rollup import rollup_hour

    org = Organization.objects.filter(pk=org_id).first()
    if org is None:  # deleted since: nothing to roll up
        return 0
    return rollup_hour(org=org, day=date.fromisoformat(day), hour=hour).rows


@shared_task(name="usage.rollup_hours_sweep", acks_late=True)
def rollup_hours_sweep() -> int:
    """Enqueue a rollup for every due org-hour (the last finished ones, dirty ones) and
    drop the hour rollups older than the days kept."""
    from usage.services.rollup import rollup_hours_due, rollup_hours_prune

    rollup_hours_prune()
    due = rollup_hours_due()
    for org_id, day, hour in due:
        rollup_hour_run.delay(org_id, day.isoformat(), hour)
    return len(due)
