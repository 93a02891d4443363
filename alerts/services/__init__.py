"""Writes for alerts, in modules by subject (rules and evaluation; delivery); this package
re-exports them so callers import from `alerts.services` alone."""

from alerts.services.delivery import (
    alert_email_send,
    alert_email_subject,
    alert_webhook_attempt,
    alert_webhook_payload,
    header_safe,
)
from alerts.services.rules import (
    DEFAULT_RULES,
    SUGGESTED_THRESHOLDS,
    THRESHOLD_BOUNDS,
    AlertRuleInvalid,
    RuleFields,
    alert_defaults_create,
    alert_notification_dismiss,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    alert_settings_ensure,
    alert_threshold_check,
    alert_webhook_secret_rotate,
    alerts_evaluate,
    webhook_secret_generate,
)

__all__ = [
    "DEFAULT_RULES",
    "SUGGESTED_THRESHOLDS",
    "THRESHOLD_BOUNDS",
    "AlertRuleInvalid",
    "RuleFields",
    "alert_defaults_create",
    "alert_email_send",
    "alert_email_subject",
    "alert_notification_dismiss",
    "alert_rule_create",
    "alert_rule_delete",
    "alert_rule_update",
    "alert_settings_ensure",
    "alert_threshold_check",
    "alert_webhook_attempt",
    "alert_webhook_payload",
    "alert_webhook_secret_rotate",
    "alerts_evaluate",
    "header_safe",
    "webhook_secret_generate",
]
