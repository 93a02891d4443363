"""Writes for alerts' rules: the defaults, rules, evaluation (one notification per
crossing), dismissals and the webhook secret. Delivery is alerts/services/delivery.py."""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import AuditAction, Organization, Project, User
from alerts.models import (
    PROJECT_KINDS,
    AlertDismissal,
    AlertKind,
    AlertNotification,
    AlertRule,
    AlertSettings,
    in_project,
)
from alerts.selectors import OrgFigures, rule_conditions
from alerts.signals import notification_fired
from alerts.webhooks import WebhookRefused, webhook_url_check
from core.errors import FieldError

logger = logging.getLogger(__name__)

# The rules every new organization starts with (kind, threshold), editable afterwards.
DEFAULT_RULES: tuple[tuple[str, Decimal], ...] = (
    (AlertKind.TOKENS, Decimal("80")),
    (AlertKind.TOKENS, Decimal("100")),
    (AlertKind.BALANCE, Decimal("10")),
)

# What the form proposes for a new rule of each kind.
SUGGESTED_THRESHOLDS: dict[str, Decimal] = {
    AlertKind.TOKENS: Decimal("80"),
    AlertKind.BALANCE: Decimal("10"),
    AlertKind.USAGE_TIME: Decimal("24"),
    AlertKind.RATE_LIMITS: Decimal("100"),
    AlertKind.UNUSUAL_USAGE: Decimal("3"),
    AlertKind.CONTROLLER_OFFLINE: Decimal("15"),
    AlertKind.BUDGET: Decimal("0"),
}

# Allowed thresholds per kind: (lowest, highest, whole numbers only).
THRESHOLD_BOUNDS: dict[str, tuple[Decimal, Decimal, bool]] = {
    AlertKind.TOKENS: (Decimal("1"), Decimal("1000"), False),
    AlertKind.BALANCE: (Decimal("0"), Decimal("1000000000"), False),
    AlertKind.USAGE_TIME: (Decimal("0.1"), Decimal("100000"), False),
    AlertKind.RATE_LIMITS: (Decimal("0"), Decimal("10000000"), True),
    AlertKind.UNUSUAL_USAGE: (Decimal("1"), Decimal("1000"), False),
    AlertKind.CONTROLLER_OFFLINE: (Decimal("1"), Decimal("100000"), True),
    AlertKind.BUDGET: (Decimal("0"), Decimal("1000"), True),
}


class AlertRuleInvalid(FieldError):
    """The rule cannot be saved as given; nothing was written."""


def alert_threshold_check(*, kind: str, threshold: Decimal) -> Decimal:
    """The threshold, checked against its kind's bounds (AlertRuleInvalid if outside)."""
    if kind not in AlertKind.values:
        raise AlertRuleInvalid("kind", f"unknown alert kind {kind!r}")
    try:
        threshold = Decimal(threshold)
    except (InvalidOperation, TypeError, ValueError):
        raise AlertRuleInvalid("threshold", "enter a number") from None
    if not threshold.is_finite():
        raise AlertRuleInvalid("threshold", "enter a number")
    low, high, whole = THRESHOLD_BOUNDS[kind]
    if whole and threshold != threshold.to_integral_value():
        raise AlertRuleInvalid("threshold", "enter a whole number")
    if not low <= threshold <= high:
        raise AlertRuleInvalid("threshold", f"enter a value from {low:,} to {high:,}")
    return threshold.quantize(Decimal("0.0001"))


def webhook_secret_generate() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def alert_settings_ensure(*, org: Organization) -> AlertSettings:
    """The organization's alert settings (its webhook secret), made on first need."""
    row, _ = AlertSettings.objects.get_or_create(
        organization=org, defaults={"webhook_secret": webhook_secret_generate()}
    )
    return row


@transaction.atomic
def alert_defaults_create(*, org: Organization) -> list[AlertRule]:
    """Give a new organization the default rules (80% and 100% of the monthly tokens,
    low balance) and its webhook secret. Idempotent: existing rules are kept."""
    alert_settings_ensure(org=org)
    AlertRule.objects.bulk_create(
        [AlertRule(organization=org, kind=k, threshold=t) for k, t in DEFAULT_RULES],
        ignore_conflicts=True,
    )
    return list(AlertRule.objects.filter(organization=org))


@transaction.atomic
def alert_webhook_secret_rotate(*, org: Organization, actor: User | None = None) -> AlertSettings:
    """A new signing secret; deliveries from now on are signed with it."""
    row = alert_settings_ensure(org=org)
    row.webhook_secret = webhook_secret_generate()
    row.secret_rotated_at = timezone.now()
    row.save(update_fields=["webhook_secret", "secret_rotated_at"])
    audit_record(
        org=org,
        actor=actor,
        action=AuditAction.WEBHOOK_SECRET_ROTATED,
        summary="Rotated the alert webhooks' signing secret",
        target=f"alert_settings:{row.pk}",
    )
    return row


def _webhook_checked(url: str) -> str:
    url = (url or "").strip()
    if url:
        try:
            webhook_url_check(url)
        except WebhookRefused as exc:
            raise AlertRuleInvalid("webhook_url", str(exc)) from None
    return url


@dataclass(frozen=True)
class RuleFields:
    kind: str
    threshold: Decimal
    enabled: bool = True
    notify_email: bool = True
    webhook_url: str = ""
    project_id: int | None = None  # None: the whole organization


def _project_checked(*, org_id: int, fields: RuleFields) -> Project | None:
    """The rule's project: one of the organization's, for a kind kept per project."""
    if fields.project_id is None:
        return None
    project = Project.objects.filter(organization_id=org_id, pk=fields.project_id).first()
    if project is None:
        raise AlertRuleInvalid("project", "no such project in this organization")
    if fields.kind not in PROJECT_KINDS:
        raise AlertRuleInvalid(
            "project",
            f"“{AlertKind(fields.kind).label}” watches the whole organization: choose no project",
        )
    return project


def _duplicate(*, org_id: int, project: Project | None, kind: str, threshold: Decimal):
    return AlertRule.objects.filter(
        organization_id=org_id, project=project, kind=kind, threshold=threshold
    )


_DUPLICATE = "a rule of this kind with this threshold exists"


@transaction.atomic
def alert_rule_create(
    *, org: Organization, fields: RuleFields, actor: User | None = None
) -> AlertRule:
    """Add a rule (AlertRuleInvalid: bad threshold, refused webhook URL, or a duplicate)."""
    threshold = alert_threshold_check(kind=fields.kind, threshold=fields.threshold)
    url = _webhook_checked(fields.webhook_url)
    project = _project_checked(org_id=org.pk, fields=fields)
    if _duplicate(org_id=org.pk, project=project, kind=fields.kind, threshold=threshold).exists():
        raise AlertRuleInvalid("threshold", _DUPLICATE)
    alert_settings_ensure(org=org)  # the webhook secret exists before the first delivery
    try:
        with transaction.atomic():
            rule = AlertRule.objects.create(
                organization=org,
                kind=fields.kind,
                threshold=threshold,
                project=project,
                enabled=fields.enabled,
                notify_email=fields.notify_email,
                webhook_url=url,
                created_by=actor,
            )
    except IntegrityError:  # the same rule was added at the same moment
        raise AlertRuleInvalid("threshold", _DUPLICATE) from None
    logger.info("billing.alerts.rule_created", extra={"org": org.pk, "rule": rule.pk})
    audit_record(
        org=org,
        actor=actor,
        action=AuditAction.ALERT_RULE_CREATED,
        summary=f"Added alert rule: {_rule_words(rule)}",
        target=f"alert_rule:{rule.pk}",
    )
    return rule


def _rule_words(rule: AlertRule) -> str:
    state = " (off)" if not rule.enabled else ""
    return f"{rule.sentence.rstrip('.')}{state}"


@transaction.atomic
def alert_rule_update(
    *, rule: AlertRule, fields: RuleFields, actor: User | None = None
) -> AlertRule:
    """Change a rule. A new kind, threshold or project closes its open crossings: it
    starts armed."""
    rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
    threshold = alert_threshold_check(kind=fields.kind, threshold=fields.threshold)
    url = _webhook_checked(fields.webhook_url)
    project = _project_checked(org_id=rule.organization_id, fields=fields)
    duplicate = _duplicate(
        org_id=rule.organization_id, project=project, kind=fields.kind, threshold=threshold
    ).exclude(pk=rule.pk)
    if duplicate.exists():
        raise AlertRuleInvalid("threshold", _DUPLICATE)
    if (fields.kind, threshold, fields.project_id) != (rule.kind, rule.threshold, rule.project_id):
        _clear(AlertNotification.objects.filter(rule=rule), timezone.now())
    rule.kind, rule.threshold, rule.enabled = fields.kind, threshold, fields.enabled
    rule.project = project
    rule.notify_email, rule.webhook_url = fields.notify_email, url
    rule.updated_at = timezone.now()
    rule.save()
    audit_record(
        org=rule.organization,
        actor=actor,
        action=AuditAction.ALERT_RULE_UPDATED,
        summary=f"Changed alert rule: {_rule_words(rule)}",
        target=f"alert_rule:{rule.pk}",
    )
    return rule


@transaction.atomic
def alert_rule_delete(*, rule: AlertRule, actor: User | None = None) -> None:
    """Delete a rule; its notifications stay in the list, closed."""
    _clear(AlertNotification.objects.filter(rule=rule), timezone.now())
    words, target, org = _rule_words(rule), f"alert_rule:{rule.pk}", rule.organization
    rule.delete()
    audit_record(
        org=org,
        actor=actor,
        action=AuditAction.ALERT_RULE_DELETED,
        summary=f"Deleted alert rule: {words}",
        target=target,
    )


def _clear(notifications, now: datetime) -> int:
    return notifications.filter(cleared_at__isnull=True).update(cleared_at=now)


@transaction.atomic
def alerts_evaluate(*, org: Organization, now: datetime | None = None) -> list[AlertNotification]:
    """Check every enabled rule of the organization now: record a notification for each
    new crossing (and deliver it after commit), close crossings whose condition cleared.
    Returns the new notifications. Safe to run concurrently and repeatedly."""
    now = now or timezone.now()
    # The lock serializes evaluations of one organization; the partial unique constraint
    # on open crossings backs it (and covers databases without row locks).
    rules = list(
        AlertRule.objects.select_for_update(of=("self",))
        .filter(organization=org, enabled=True)
        .select_related("project")
        .order_by("pk")
    )
    open_now = {
        (n.rule_id, n.subject): n
        for n in AlertNotification.objects.filter(organization=org, cleared_at__isnull=True)
    }
    # One set of figures per scope (the organization's, each project's), each read once.
    figures: dict[int | None, OrgFigures] = {None: OrgFigures(org, now)}
    fired: list[AlertNotification] = []
    seen: set[tuple[int | None, str]] = set()
    to_clear: list[int] = []
    for rule in rules:
        if rule.project_id not in figures:
            figures[rule.project_id] = OrgFigures(org, now, project_id=rule.project_id)
        for condition in rule_conditions(rule=rule, figures=figures[rule.project_id]):
            key = (rule.pk, condition.subject)
            seen.add(key)
            current = open_now.get(key)
            if condition.holds and current is None:
                notification = _fire(org=org, rule=rule, condition=condition, now=now)
                if notification is not None:
                    fired.append(notification)
            elif not condition.holds and current is not None:
                to_clear.append(current.pk)
    # Crossings of rules turned off or deleted, or of controllers that went away, end too.
    to_clear += [n.pk for key, n in open_now.items() if key not in seen]
    if to_clear:
        _clear(AlertNotification.objects.filter(pk__in=to_clear), now)
    if fired or to_clear:
        logger.info(
            "billing.alerts.evaluated",
            extra={"org": org.pk, "fired": len(fired), "cleared": len(to_clear)},
        )
    return fired


def _fire(*, org: Organization, rule: AlertRule, condition, now: datetime):
    try:
        with transaction.atomic():
            notification = AlertNotification.objects.create(
                organization=org,
                rule=rule,
                kind=rule.kind,
                subject=condition.subject,
                message=in_project(rule.project_name, condition.message)[:500],
                figures={
                    **condition.figures,
                    "threshold": rule.threshold_display,
                    **({"project_name": rule.project_name} if rule.project_id else {}),
                },
                fired_at=now,
            )
    except IntegrityError:  # another evaluation recorded this crossing first
        return None
    transaction.on_commit(
        partial(
            notification_fired.send,
            sender=notification_fired,
            notification_id=notification.pk,
            email=rule.notify_email,
            webhook=bool(rule.webhook_url),
        )
    )
    return notification


@transaction.atomic
def alert_notification_dismiss(*, notification: AlertNotification, user: User) -> None:
    """Hide the notification's banner for this member (idempotent)."""
    AlertDismissal.objects.get_or_create(
        organization_id=notification.organization_id, notification=notification, user=user
    )
