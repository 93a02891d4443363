"""Delivery of a fired alert: its email (once) and its webhook (signed, retried), each
attempt recorded as an AlertDelivery."""

import json
import logging
import unicodedata
from smtplib import SMTPException

from django.core.mail import EmailMessage
from django.db import transaction

from accounts.mail import LinkSafeEmail, site_link
from accounts.models import Organization
from alerts.models import (
    AlertDelivery,
    AlertKind,
    AlertNotification,
    DeliveryChannel,
    DeliveryStatus,
)
from alerts.selectors import alert_recipients
from alerts.services.rules import alert_settings_ensure
from alerts.webhooks import WebhookFailed, WebhookRefused, webhook_post
from core.text import REFUSED_CATEGORIES

logger = logging.getLogger(__name__)


def _notifications_url(org: Organization) -> str:
    return site_link("accounts:alerts:notifications", org.slug)


def _record(notification: AlertNotification, channel: str, target: str, **fields) -> AlertDelivery:
    return AlertDelivery.objects.create(
        organization_id=notification.organization_id,
        notification=notification,
        channel=channel,
        target=target[:1000],
        **fields,
    )


_SUBJECTS: dict[str, str] = {
    AlertKind.TOKENS: "monthly tokens reached {threshold}% of the allocation",
    AlertKind.BALANCE: "credit balance below {threshold}",
    AlertKind.USAGE_TIME: "less than {threshold} hours of usage time left",
    AlertKind.RATE_LIMITS: "rate limits hit more than {threshold} times in an hour",
    AlertKind.UNUSUAL_USAGE: "unusual usage today",
    AlertKind.CONTROLLER_OFFLINE: "controller {controller} offline",
    AlertKind.BUDGET: "a budget reached {percent}% of its soft level",
}


def header_safe(text: str, *, limit: int = 200) -> str:
    """Text fit for a mail header: control, bidi and zero-width characters (CR/LF among
    them: a header break) become spaces, runs of spaces one; cut at limit."""
    cleaned = "".join(
        " " if unicodedata.category(char) in REFUSED_CATEGORIES else char for char in text
    )
    return " ".join(cleaned.split())[:limit]


def alert_email_subject(notification: AlertNotification) -> str:
    figures = {"threshold": "", "controller": "", "percent": "", **notification.figures}
    subject = _SUBJECTS[notification.kind].format(**figures)
    project = notification.figures.get("project_name")
    return header_safe(f"{project}: {subject}" if project else subject)


def _email_unsent_locked(notification_id: int) -> AlertNotification | None:
    """The notification, locked, unless it is gone or its email was already sent."""
    notification = (
        AlertNotification.objects.select_for_update()
        .select_related("organization")
        .filter(pk=notification_id)
        .first()
    )
    if notification is None:
        return None
    sent = notification.deliveries.filter(channel=DeliveryChannel.EMAIL, status=DeliveryStatus.SENT)
    return None if sent.exists() else notification


def _alert_email(notification: AlertNotification, recipients: list[str]) -> EmailMessage:
    """The email telling the organization's owners and admins of the notification."""
    org = notification.organization
    return LinkSafeEmail(
        subject=header_safe(
            f"[Usage Console] {org.name}: {alert_email_subject(notification)}", limit=250
        ),
        body=(
            f"{notification.message}\n\n"
            f"Organization: {org.name}\n"
            f"Fired at: {notification.fired_at:%Y-%m-%d %H:%M} UTC\n\n"
            f"All notifications: {_notifications_url(org)}\n\n"
            "You receive this because you are an owner or admin of the organization.\n"
        ),
        to=recipients,
    )


def alert_email_send(*, notification_id: int) -> AlertDelivery | None:
    """Mail the notification to the organization's owners and admins, once: a delivery
    already sent is not repeated (the row lock makes a concurrent run wait and see it).
    Mail errors are recorded as a failed attempt and raised for the task to retry."""
    failure: Exception | None = None
    with transaction.atomic():
        notification = _email_unsent_locked(notification_id)
        if notification is None:
            return None
        recipients = alert_recipients(org=notification.organization)
        attempt = notification.deliveries.filter(channel=DeliveryChannel.EMAIL).count() + 1
        if not recipients:
            return _record(
                notification,
                DeliveryChannel.EMAIL,
                "",
                attempt=attempt,
                status=DeliveryStatus.FAILED,
                error="the organization has no owner or admin to mail",
            )
        message = _alert_email(notification, recipients)
        try:
            message.send()
        except (SMTPException, OSError) as exc:
            failure = exc
        else:
            return _record(
                notification,
                DeliveryChannel.EMAIL,
                ", ".join(recipients),
                attempt=attempt,
                status=DeliveryStatus.SENT,
            )
    _record(
        notification,
        DeliveryChannel.EMAIL,
        ", ".join(recipients),
        attempt=attempt,
        status=DeliveryStatus.FAILED,
        error=str(failure)[:500],
    )
    raise failure


def alert_webhook_payload(notification: AlertNotification) -> bytes:
    """The JSON body a webhook receives."""
    org = notification.organization
    return json.dumps(
        {
            "type": "alert.fired",
            "id": notification.pk,
            "organization": org.slug,
            "rule": {
                "id": notification.rule_id,
                "kind": notification.kind,
                "threshold": notification.figures.get("threshold"),
                # The project the rule watches, or null for the whole organization.
                "project": notification.rule.project_id if notification.rule else None,
            },
            "subject": notification.subject,
            "message": notification.message,
            "figures": notification.figures,
            "fired_at": notification.fired_at.isoformat(),
        },
        sort_keys=True,
    ).encode()


def alert_webhook_attempt(*, notification_id: int, attempt: int) -> AlertDelivery | None:
    """One signed POST of the notification to its rule's webhook, recorded as an attempt.

    None when there is nothing to do (no webhook, or already delivered). A refused
    address is final; a failed one is for the caller to retry.
    """
    notification = (
        AlertNotification.objects.select_related("organization", "rule")
        .filter(pk=notification_id)
        .first()
    )
    if notification is None or notification.rule is None or not notification.rule.webhook_url:
        return None
    deliveries = notification.deliveries.filter(channel=DeliveryChannel.WEBHOOK)
    if deliveries.filter(status=DeliveryStatus.SENT).exists():
        return None
    url = notification.rule.webhook_url
    secret = alert_settings_ensure(org=notification.organization).webhook_secret
    try:
        status = webhook_post(url=url, body=alert_webhook_payload(notification), secret=secret)
    except WebhookRefused as exc:
        return _record(
            notification,
            DeliveryChannel.WEBHOOK,
            url,
            attempt=attempt,
            status=DeliveryStatus.REFUSED,
            error=str(exc)[:500],
        )
    except WebhookFailed as exc:
        return _record(
            notification,
            DeliveryChannel.WEBHOOK,
            url,
            attempt=attempt,
            status=DeliveryStatus.FAILED,
            response_code=exc.status,
            error=str(exc)[:500],
        )
    return _record(
        notification,
        DeliveryChannel.WEBHOOK,
        url,
        attempt=attempt,
        status=DeliveryStatus.SENT,
        response_code=status,
    )
