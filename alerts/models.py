"""Alert rules, their notifications (one per crossing) and the deliveries of each.

A notification is also the rule's state: while its condition holds, the crossing's
notification stays open (cleared_at empty). A partial unique constraint allows one
open notification per rule and subject, so two evaluations running at once cannot
both record, and so both mail, the same crossing. The rule re-arms when the
condition clears and the notification is closed.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization, Project
from billing.money import credits_text
from core.numbers import decimal_input, noun


class AlertKind(models.TextChoices):
    TOKENS = "tokens", "Monthly tokens reach a share of the allocation"
    BALANCE = "balance", "Credit balance falls below"
    USAGE_TIME = "usage_time", "Remaining usage time falls below"
    RATE_LIMITS = "rate_limits", "Rate limits hit in the last hour"
    UNUSUAL_USAGE = "unusual_usage", "Unusual usage: today's credits against the 14-day median"
    CONTROLLER_OFFLINE = "controller_offline", "A controller is offline"
    BUDGET = "budget", "A budget reaches one of its thresholds"


# What the threshold of each kind means, with its unit (forms and messages say it).
THRESHOLD_UNITS = {
    AlertKind.TOKENS: "% of the monthly allocation",
    AlertKind.BALANCE: "credits",
    AlertKind.USAGE_TIME: "hours",
    AlertKind.RATE_LIMITS: "refused requests",
    AlertKind.UNUSUAL_USAGE: "× the trailing 14-day median",
    AlertKind.CONTROLLER_OFFLINE: "minutes",
    AlertKind.BUDGET: "% of the soft level",
}


# The kinds a rule may watch in one project: their figures are kept per project (spend
# per day, refusals per key, controllers, budgets). The balance, the usage time it buys
# and the plan's token allocation belong to the organization as a whole.
PROJECT_KINDS = frozenset(
    {AlertKind.RATE_LIMITS, AlertKind.UNUSUAL_USAGE, AlertKind.CONTROLLER_OFFLINE, AlertKind.BUDGET}
)


def in_project(project_name: str, text: str) -> str:
    """A rule's sentence or a crossing's message said of one project ("In project
    Research, today's usage passes ..."); unchanged without one."""
    if not project_name or not text:
        return text
    return f"In project {project_name}, {text[0].lower()}{text[1:]}"


def rule_sentence(kind: str, threshold: Decimal, project_name: str = "") -> str:
    """What a rule watches for, as a sentence ("The credit balance falls below 10.00
    credits."): the rules table, the notifications list and the audit log say it so."""
    return in_project(project_name, _kind_sentence(kind, threshold))


def _kind_sentence(kind: str, threshold: Decimal) -> str:
    t = decimal_input(threshold)
    match kind:
        case AlertKind.TOKENS:
            return f"Monthly tokens reach {t}% of the plan's allocation."
        case AlertKind.BALANCE:
            return f"The credit balance falls below {credits_text(threshold)}."
        case AlertKind.USAGE_TIME:
            hours = noun(threshold, "hour")
            return f"Less than {t} {hours} of usage time remains at the standard worker's rate."
        case AlertKind.RATE_LIMITS:
            requests = noun(threshold, "request")
            return f"Rate limits refuse more than {t} {requests} within an hour."
        case AlertKind.UNUSUAL_USAGE:
            return f"Today's usage passes {t} × the median day of the last 14."
        case AlertKind.CONTROLLER_OFFLINE:
            return f"A controller sends no heartbeat for {t} {noun(threshold, 'minute')}."
        case AlertKind.BUDGET:
            if not threshold:
                return (
                    "A budget's spending reaches one of its alert thresholds (by default 50%, "
                    "80% and 100% of its soft level)."
                )
            return (
                f"A budget's spending reaches one of its alert thresholds of {t}% of its "
                "soft level or more."
            )
    return str(AlertKind(kind).label) if kind in AlertKind.values else kind


class AlertSettings(models.Model):
    """Per organization: the secret alert webhooks are signed with (HMAC-SHA256)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="alert_settings"
    )
    webhook_secret = models.CharField(max_length=100)
    secret_rotated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "alert settings"

    def __str__(self) -> str:
        return f"Alert settings of {self.organization}"


class AlertRule(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="alert_rules"
    )
    kind = models.CharField(max_length=30, choices=AlertKind.choices)
    # Percent, credits, hours, count, multiplier or minutes: see THRESHOLD_UNITS.
    threshold = models.DecimalField(max_digits=20, decimal_places=4)
    # Empty: the whole organization. A project: that project's figures only (PROJECT_KINDS).
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules"
    )
    enabled = models.BooleanField(default=True)
    notify_email = models.BooleanField(default=True)
    webhook_url = models.URLField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "threshold", "id"]
        constraints = [
            # Two identical rules would mail the same crossing twice.
            models.UniqueConstraint(
                fields=["organization", "kind", "threshold"],
                condition=Q(project__isnull=True),
                name="alert_rule_unique_per_org",
            ),
            models.UniqueConstraint(
                fields=["organization", "project", "kind", "threshold"],
                condition=Q(project__isnull=False),
                name="alert_rule_unique_per_project",
            ),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="alert_threshold_not_neg"),
        ]

    def __str__(self) -> str:
        text = f"{self.get_kind_display()}: {self.threshold_display} {self.unit}"
        return f"{text} (project {self.project})" if self.project_id else text

    @property
    def unit(self) -> str:
        return THRESHOLD_UNITS[self.kind]

    @property
    def threshold_display(self) -> str:
        return decimal_input(self.threshold)

    @property
    def project_name(self) -> str:
        return self.project.name if self.project_id and self.project else ""

    @property
    def sentence(self) -> str:
        return rule_sentence(self.kind, self.threshold, self.project_name)


class AlertNotification(models.Model):
    """One crossing of a rule: when it fired, what the figures were, when it cleared."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="alert_notifications"
    )
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    kind = models.CharField(max_length=30, choices=AlertKind.choices)
    # What the crossing is about within the rule: "" or "controller:<id>".
    subject = models.CharField(max_length=100, blank=True, default="")
    message = models.CharField(max_length=500)
    figures = models.JSONField(default=dict)
    fired_at = models.DateTimeField(default=timezone.now)
    cleared_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="AlertDismissal", related_name="+"
    )

    class Meta:
        ordering = ["-fired_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "rule", "subject"],
                condition=Q(cleared_at__isnull=True),
                name="alert_one_open_crossing",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-fired_at"], name="alert_notif_org_time"),
        ]

    def __str__(self) -> str:
        return self.message

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None

    @property
    def rule_sentence(self) -> str:
        """The rule that fired, as a sentence (from the threshold it had then)."""
        try:
            threshold = Decimal(str(self.figures.get("threshold", "")))
        except ArithmeticError:
            return str(self.get_kind_display())
        return rule_sentence(self.kind, threshold, str(self.figures.get("project_name") or ""))


class AlertDismissal(models.Model):
    """A member hid the notification's banner (for themselves only)."""

    # The notification's organization, so the row lives with its tenant's (docs/scaling.md).
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    notification = models.ForeignKey(AlertNotification, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    dismissed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "notification", "user"], name="alert_dismissal_once"
            ),
        ]

    def __str__(self) -> str:
        return f"dismissed by user {self.user_id}"


class DeliveryChannel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class DeliveryStatus(models.TextChoices):
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused (address not allowed)"


class AlertDelivery(models.Model):
    """One attempt to deliver a notification by email or to a webhook."""

    # The notification's organization, so the row lives with its tenant's (docs/scaling.md).
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    notification = models.ForeignKey(
        AlertNotification, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.CharField(max_length=10, choices=DeliveryChannel.choices)
    target = models.CharField(max_length=1000)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    attempted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["attempted_at", "id"]
        verbose_name_plural = "alert deliveries"

    def __str__(self) -> str:
        return f"{self.channel} #{self.attempt} {self.status}"
