"""The alert rule form: kind, threshold, channels; checked by the same rules as the service."""

from decimal import Decimal

from django import forms

from accounts.forms import TypedDecimalField
from alerts.models import THRESHOLD_UNITS, AlertKind, AlertRule
from alerts.services import (
    SUGGESTED_THRESHOLDS,
    AlertRuleInvalid,
    RuleFields,
    alert_threshold_check,
)
from alerts.webhooks import WebhookRefused, webhook_url_check


class AlertRuleForm(forms.Form):
    kind = forms.ChoiceField(choices=AlertKind.choices, label="Alert when")
    threshold = TypedDecimalField(
        max_digits=20,
        decimal_places=4,
        label="Threshold",
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
        help_text=(
            "Tokens: % of the monthly allocation (80 by default). Balance: credits. "
            "Usage time: hours. Rate limits: refused requests in an hour (more than). "
            "Unusual usage: k × the 14-day median (3 by default). Controller: minutes offline."
        ),
    )
    enabled = forms.BooleanField(required=False, initial=True, label="On")
    notify_email = forms.BooleanField(
        required=False, initial=True, label="Email the organization's owners and admins"
    )
    webhook_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        label="Webhook URL (optional)",
        help_text="We POST each notification there, signed with your webhook secret.",
    )

    @classmethod
    def for_rule(cls, rule: AlertRule) -> "AlertRuleForm":
        return cls(
            initial={
                "kind": rule.kind,
                "threshold": rule.threshold.normalize(),
                "enabled": rule.enabled,
                "notify_email": rule.notify_email,
                "webhook_url": rule.webhook_url,
            }
        )

    @classmethod
    def blank(cls, kind: str = AlertKind.TOKENS) -> "AlertRuleForm":
        return cls(initial={"kind": kind, "threshold": SUGGESTED_THRESHOLDS[kind]})

    def clean(self) -> dict:
        data = super().clean()
        kind, threshold = data.get("kind"), data.get("threshold")
        if kind and threshold is not None:
            try:
                data["threshold"] = alert_threshold_check(kind=kind, threshold=threshold)
            except AlertRuleInvalid as exc:
                self.add_error("threshold", f"{exc} {THRESHOLD_UNITS[kind]}.")
        url = data.get("webhook_url")
        if url:
            try:
                webhook_url_check(url)
            except WebhookRefused as exc:
                self.add_error("webhook_url", str(exc))
        return data

    def preview_input(self) -> tuple[str, Decimal] | None:
        """Kind and threshold for the preview, if those two fields are valid."""
        if not self.is_bound:
            kind, threshold = self.initial.get("kind"), self.initial.get("threshold")
            return (kind, Decimal(threshold)) if kind and threshold is not None else None
        self.is_valid()
        data = self.cleaned_data
        if "kind" in data and data.get("threshold") is not None and "threshold" not in self.errors:
            return data["kind"], data["threshold"]
        return None

    def rule_fields(self) -> RuleFields:
        data = self.cleaned_data
        return RuleFields(
            kind=data["kind"],
            threshold=data["threshold"],
            enabled=data["enabled"],
            notify_email=data["notify_email"],
            webhook_url=data.get("webhook_url") or "",
        )
