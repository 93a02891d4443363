"""Celery tasks for billing: thin wrappers that take ids and call a service."""

from celery import shared_task
from django.db import OperationalError


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def auto_recharge_run(org_id: int, trigger_entry_id: int) -> int | None:
    """Auto-recharge for the debit that crossed the threshold; safe to run twice."""
    from billing.services import auto_recharge_fire

    payment = auto_recharge_fire(org_id=org_id, trigger_entry_id=trigger_entry_id)
    return payment.pk if payment else None
