"""Alerts: rules an organization sets, evaluated every few minutes and right after
ingestion batches, each crossing recorded once and delivered by email and webhook.

This package's __init__ stays import-light (billing.models imports the models from
here); `evaluate_soon` is the hook other apps call.
"""


def evaluate_soon(org_id: int) -> None:
    """Evaluate the organization's alert rules once the current transaction commits.

    Batches arriving close together share one evaluation: the first enqueues it with a
    short countdown and the rest within that time find it queued (a cache key), so a
    busy organization costs one evaluation per few seconds, not one per batch.
    """
    from django.conf import settings
    from django.core.cache import cache
    from django.db import transaction

    from billing.tasks import alerts_evaluate_org

    delay = int(getattr(settings, "ALERT_EVALUATE_DEBOUNCE_SECONDS", 5))

    def enqueue() -> None:
        if alerts_evaluate_org.app.conf.task_always_eager or delay <= 0:
            alerts_evaluate_org.delay(org_id)  # in-process: nothing to coalesce
        elif cache.add(f"alerts:evaluate-soon:{org_id}", 1, timeout=delay):
            alerts_evaluate_org.apply_async((org_id,), countdown=delay)

    # Robust: with Redis (cache and broker) down, the batch is stored and answered all the
    # same; the beat's evaluation every few minutes catches up (logged by Django).
    transaction.on_commit(enqueue, robust=True)
