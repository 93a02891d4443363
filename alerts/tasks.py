"""Celery tasks for alerts: thin wrappers that take ids and call a service."""

from celery import shared_task
from django.db import OperationalError

from accounts.models import Organization
from alerts.models import AlertRule, DeliveryStatus
from core.sweeps import SWEEP_MAX_RETRIES, sweep_org_run

# Webhook retries wait 10 s, 20 s, 40 s ... up to 10 minutes: six attempts in about 5 min.
ALERT_WEBHOOK_MAX_RETRIES = 5


def alert_webhook_backoff(retries: int) -> int:
    return min(600, 10 * 2**retries)


@shared_task(
    name="alerts.tasks.alerts_evaluate_org",
    bind=True,
    acks_late=True,
    max_retries=SWEEP_MAX_RETRIES,
)
def alerts_evaluate_org(self, org_id: int) -> int:
    """Evaluate one organization's alert rules; the number of new notifications. A
    failure is recorded and retried with backoff; other organizations' tasks go on."""
    from alerts.services import alerts_evaluate

    org = Organization.objects.filter(pk=org_id).first()
    if org is None:
        return 0
    fired = sweep_org_run(
        self, org_id=org_id, sweep="alerts", work=lambda: alerts_evaluate(org=org)
    )
    return len(fired or [])


@shared_task(
    name="alerts.tasks.alerts_evaluate_due",
    acks_late=True,
)
def alerts_evaluate_due() -> int:
    """The beat's entry: one evaluation task per organization with an enabled rule."""
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
    name="alerts.tasks.alert_email_deliver",
    acks_late=True,
    autoretry_for=(OSError, OperationalError),
    retry_backoff=True,
    max_retries=5,
)
def alert_email_deliver(notification_id: int) -> int | None:
    """Mail a notification to the owners and admins; once, however often it runs."""
    from alerts.services import alert_email_send

    delivery = alert_email_send(notification_id=notification_id)
    return delivery.pk if delivery else None


@shared_task(
    name="alerts.tasks.alert_webhook_deliver",
    bind=True,
    acks_late=True,
    max_retries=ALERT_WEBHOOK_MAX_RETRIES,
)
def alert_webhook_deliver(self, notification_id: int) -> str | None:
    """POST a notification to its rule's webhook; a failed attempt is retried with backoff
    (each attempt is recorded), a refused address is not."""
    from alerts.services import alert_webhook_attempt

    delivery = alert_webhook_attempt(
        notification_id=notification_id, attempt=self.request.retries + 1
    )
    if delivery is None:
        return None
    if delivery.status == DeliveryStatus.FAILED and self.request.retries < self.max_retries:
        raise self.retry(countdown=alert_webhook_backoff(self.request.retries))
    return delivery.status
