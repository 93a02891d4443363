"""Celery tasks for billing: thin wrappers that take ids and call a service."""

from celery import shared_task
from django.db import OperationalError


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def auto_recharge_run(org_id: int, trigger_entry_id: int) -> int | None:
    """Auto-recharge for the debit that crossed the threshold; safe to run twice."""
    from billing.services import auto_recharge_fire

    payment = auto_recharge_fire(org_id=org_id, trigger_entry_id=trigger_entry_id)
    return payment.pk if payment else None


# Alerts ---------------------------------------------------------------------------------

# Webhook retries wait 10 s, 20 s, 40 s ... up to 10 minutes: six attempts in about 5 min.
ALERT_WEBHOOK_MAX_RETRIES = 5


def alert_webhook_backoff(retries: int) -> int:
    return min(600, 10 * 2**retries)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def alerts_evaluate_org(org_id: int) -> int:
    """Evaluate one organization's alert rules; the number of new notifications."""
    from accounts.models import Organization
    from billing.alerts.services import alerts_evaluate

    org = Organization.objects.filter(pk=org_id).first()
    if org is None:
        return 0
    return len(alerts_evaluate(org=org))


@shared_task(acks_late=True)
def alerts_evaluate_due() -> int:
    """The beat's entry: one evaluation task per organization with an enabled rule."""
    from billing.alerts.models import AlertRule

    org_ids = list(
        AlertRule.objects.filter(enabled=True)
        .values_list("organization_id", flat=True)
        .distinct()
        .order_by("organization_id")
    )
    for org_id in org_ids:
        alerts_evaluate_org.delay(org_id)
    return len(org_ids)


@shared_task(
    acks_late=True,
    autoretry_for=(OSError, OperationalError),
    retry_backoff=True,
    max_retries=5,
)
def alert_email_deliver(notification_id: int) -> int | None:
    """Mail a notification to the owners and admins; once, however often it runs."""
    from billing.alerts.services import alert_email_send

    delivery = alert_email_send(notification_id=notification_id)
    return delivery.pk if delivery else None


@shared_task(bind=True, acks_late=True, max_retries=ALERT_WEBHOOK_MAX_RETRIES)
def alert_webhook_deliver(self, notification_id: int) -> str | None:
    """POST a notification to its rule's webhook; a failed attempt is retried with backoff
    (each attempt is recorded), a refused address is not."""
    from billing.alerts.models import DeliveryStatus
    from billing.alerts.services import alert_webhook_attempt

    delivery = alert_webhook_attempt(
        notification_id=notification_id, attempt=self.request.retries + 1
    )
    if delivery is None:
        return None
    if delivery.status == DeliveryStatus.FAILED and self.request.retries < self.max_retries:
        raise self.retry(countdown=alert_webhook_backoff(self.request.retries))
    return delivery.status


# Reconciliation -------------------------------------------------------------------------


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def reconcile_nightly(days: int = 7) -> int:
    """Check every organization's cached balance and recent clean rollup days against
    their source of truth; the number of mismatches (reported, never fixed)."""
    from billing.services.reconciliation import reconcile_all

    return len(reconcile_all(days=days).issues)
