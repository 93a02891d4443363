"""Alerts' part in other apps' events, connected in AlertsConfig.ready."""

from django.conf import settings
from django.core import cache as django_cache
from django.db import transaction
from django.dispatch import receiver

from accounts.models import Organization
from accounts.signals import organization_created
from alerts.budgets import budget_alert_rule_ensure
from alerts.services import alert_defaults_create
from alerts.signals import notification_fired
from alerts.tasks import alert_email_deliver, alert_webhook_deliver, alerts_evaluate_org
from spend.signals import budget_saved
from usage.signals import usage_recorded


@receiver(organization_created, dispatch_uid="alerts.organization_created")
def _organization_created(sender, organization: Organization, **kwargs) -> None:
    alert_defaults_create(org=organization)


@receiver(budget_saved, dispatch_uid="alerts.budget_saved")
def _budget_saved(sender, organization: Organization, **kwargs) -> None:
    budget_alert_rule_ensure(org=organization)


@receiver(usage_recorded, dispatch_uid="alerts.usage_recorded")
def _usage_recorded(sender, organization_id: int, **kwargs) -> None:
    evaluate_soon(organization_id)


@receiver(notification_fired, dispatch_uid="alerts.notification_fired")
def _notification_fired(sender, notification_id: int, email: bool, webhook: bool, **kwargs) -> None:
    if email:
        alert_email_deliver.delay(notification_id)
    if webhook:
        alert_webhook_deliver.delay(notification_id)


def evaluate_soon(org_id: int) -> None:
    """Evaluate the organization's alert rules once the current transaction commits.

    Batches arriving close together share one evaluation: the first enqueues it with a
    short countdown and the rest within that time find it queued (a cache key), so a
    busy organization costs one evaluation per few seconds, not one per batch.
    """
    delay = int(settings.ALERT_EVALUATE_DEBOUNCE_SECONDS)

    def enqueue() -> None:
        if alerts_evaluate_org.app.conf.task_always_eager or delay <= 0:
            alerts_evaluate_org.delay(org_id)  # in-process: nothing to coalesce
        elif django_cache.cache.add(  # looked up at call time: tests swap the cache
            f"alerts:evaluate-soon:{org_id}", 1, timeout=delay
        ):
            alerts_evaluate_org.apply_async((org_id,), countdown=delay)

    # Robust: with Redis (cache and broker) down, the batch is stored and answered all the
    # same; the beat's evaluation every few minutes catches up (logged by Django).
    transaction.on_commit(enqueue, robust=True)
