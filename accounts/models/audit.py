"""The audit log: append-only events of changes made to an organization."""

from django.db import models
from django.utils import timezone

from accounts.models.organizations import Organization
from accounts.models.people import User


class AuditAction(models.TextChoices):
    API_KEY_CREATED = "api_key.created", "API key created"
    API_KEY_REVOKED = "api_key.revoked", "API key revoked"
    SESSION_TOKEN_ISSUED = "session_token.issued", "Session token issued"
    SESSION_TOKEN_REVOKED = "session_token.revoked", "Session token revoked"
    MEMBER_INVITED = "member.invited", "Member invited"
    INVITATION_RESENT = "member.invitation_resent", "Invitation resent"
    INVITATION_REVOKED = "member.invitation_revoked", "Invitation revoked"
    MEMBER_JOINED = "member.joined", "Member joined"
    MEMBER_ROLE_CHANGED = "member.role_changed", "Role changed"
    MEMBER_REMOVED = "member.removed", "Member removed"
    PAYMENT_SUCCEEDED = "payment.succeeded", "Payment succeeded"
    PAYMENT_FAILED = "payment.failed", "Payment failed"
    PAYMENT_REFUNDED = "payment.refunded", "Payment refunded"
    PAYMENT_METHOD_SAVED = "payment_method.saved", "Card saved"
    AUTO_RECHARGE_ENABLED = "auto_recharge.enabled", "Auto-recharge turned on"
    AUTO_RECHARGE_DISABLED = "auto_recharge.disabled", "Auto-recharge turned off"
    ALERT_RULE_CREATED = "alert_rule.created", "Alert rule created"
    ALERT_RULE_UPDATED = "alert_rule.updated", "Alert rule changed"
    ALERT_RULE_DELETED = "alert_rule.deleted", "Alert rule deleted"
    CREDITS_ADJUSTED = "credits.adjusted", "Credits adjusted by an operator"
    BILLING_DETAILS_UPDATED = "billing_details.updated", "Billing details changed"
    TWO_FACTOR_POLICY_CHANGED = "two_factor.policy_changed", "Two-factor requirement changed"
    TWO_FACTOR_ADDED = "two_factor.added", "Second factor added"
    TWO_FACTOR_REMOVED = "two_factor.removed", "Second factor removed"
    SESSION_TOKEN_RENEWED = "session_token.renewed", "Session token renewed"
    BUDGET_CREATED = "budget.created", "Budget created"
    BUDGET_UPDATED = "budget.updated", "Budget changed"
    BUDGET_DELETED = "budget.deleted", "Budget deleted"
    API_KEY_PAUSED = "api_key.paused", "API key paused"
    API_KEY_RESUMED = "api_key.resumed", "API key resumed"
    CONTROLLER_CREATED = "controller.created", "Controller registered"
    CONTROLLER_TOKEN_ROTATED = "controller.token_rotated", "Controller token rotated"
    WEBHOOK_SECRET_ROTATED = "alerts.webhook_secret_rotated", "Webhook secret rotated"
    SSO_PROVIDER_CHANGED = "sso.provider_changed", "Single sign-on provider changed"
    PROJECT_CREATED = "project.created", "Project created"
    PROJECT_UPDATED = "project.updated", "Project renamed or described"
    PROJECT_ARCHIVED = "project.archived", "Project archived"
    PROJECT_UNARCHIVED = "project.unarchived", "Project unarchived"
    PROJECT_MEMBER_SET = "project.member_set", "Project access given"
    PROJECT_MEMBER_REMOVED = "project.member_removed", "Project access removed"
    PROJECT_LIMIT_CHANGED = "project.limit_changed", "Project limit of a member changed"
    PROJECT_RATE_LIMITS_CHANGED = "project.rate_limits_changed", "Project rate limits changed"


class AuditLogAppendOnly(Exception):
    """An attempt to change or delete an audit event."""


class AuditEventQuerySet(models.QuerySet):
    """Append-only: rows are created, never updated or deleted through the ORM."""

    def update(self, **kwargs):
        raise AuditLogAppendOnly("audit events cannot be changed")

    def delete(self):
        raise AuditLogAppendOnly("audit events cannot be deleted")


class AuditEvent(models.Model):
    """One change a person (or an operator) made to an organization: who, when, what and
    from which address. Written by accounts.audit.audit_record only; never changed."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="audit_events"
    )
    # The person; their email is kept as it was, so the row still says who after they go.
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True, default="")
    # True for changes made by the platform's operators in Django admin.
    by_operator = models.BooleanField(default=False)
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    summary = models.CharField(max_length=300)
    # What it was done to: "api_key:12", "membership:3", "payment:8"...
    target = models.CharField(max_length=100, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="audit_org_time"),
            models.Index(fields=["organization", "action"], name="audit_org_action"),
            models.Index(fields=["organization", "actor"], name="audit_org_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} by {self.actor_email or '-'}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AuditLogAppendOnly("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogAppendOnly("audit events cannot be deleted")
