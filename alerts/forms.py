"""The alert rule form: kind, threshold, project, channels; checked by the same rules as
the service."""

from decimal import Decimal

from django import forms

from accounts.forms import TypedDecimalField
from accounts.models import Organization, Project
from alerts.models import PROJECT_KINDS, THRESHOLD_UNITS, AlertKind, AlertRule
from alerts.services import (
    SUGGESTED_THRESHOLDS,
    AlertRuleInvalid,
    RuleFields,
    alert_threshold_check,
)
from alerts.webhooks import WebhookRefused, webhook_url_check


class ProjectChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Project) -> str:
        return f"{obj.name} (archived)" if obj.archived_at else obj.name


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
    project = ProjectChoiceField(
        queryset=Project.objects.none(),
        required=False,
        empty_label="The whole organization",
        label="Project",
        help_text=(
            "Rate limits, unusual usage, controllers and budgets can watch one project; "
            "the balance, usage time and tokens are the organization's."
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

    def __init__(self, *args, org: Organization, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Only the organization's projects are offered (another's id is refused as invalid).
        project_field = self.fields["project"]
        assert isinstance(project_field, forms.ModelChoiceField)
        project_field.queryset = Project.objects.filter(organization=org)

    @classmethod
    def for_rule(cls, rule: AlertRule) -> "AlertRuleForm":
        return cls(
            org=rule.organization,
            initial={
                "kind": rule.kind,
                "threshold": rule.threshold.normalize(),
                "project": rule.project_id,
                "enabled": rule.enabled,
                "notify_email": rule.notify_email,
                "webhook_url": rule.webhook_url,
            },
        )

    @classmethod
    def blank(cls, *, org: Organization, kind: str = AlertKind.TOKENS) -> "AlertRuleForm":
        return cls(org=org, initial={"kind": kind, "threshold": SUGGESTED_THRESHOLDS[kind]})

    def clean(self) -> dict:
        data = super().clean()
        kind, threshold = data.get("kind"), data.get("threshold")
        if kind and threshold is not None:
            try:
                data["threshold"] = alert_threshold_check(kind=kind, threshold=threshold)
            except AlertRuleInvalid as exc:
                self.add_error("threshold", f"{exc} {THRESHOLD_UNITS[kind]}.")
        if kind and data.get("project") is not None and kind not in PROJECT_KINDS:
            self.add_error(
                "project",
                f"“{AlertKind(kind).label}” watches the whole organization: choose no project.",
            )
        url = data.get("webhook_url")
        if url:
            try:
                webhook_url_check(url)
            except WebhookRefused as exc:
                self.add_error("webhook_url", str(exc))
        return data

    def preview_input(self) -> tuple[str, Decimal, int | None] | None:
        """Kind, threshold and project id for the preview, if those fields are valid."""
        if not self.is_bound:
            kind, threshold = self.initial.get("kind"), self.initial.get("threshold")
            project_id = self.initial.get("project")
            if kind and threshold is not None:
                return kind, Decimal(threshold), project_id
            return None
        self.is_valid()
        data = self.cleaned_data
        if (
            "kind" in data
            and data.get("threshold") is not None
            and "threshold" not in self.errors
            and "project" not in self.errors
        ):
            project = data.get("project")
            return data["kind"], data["threshold"], project.pk if project else None
        return None

    def rule_fields(self) -> RuleFields:
        data = self.cleaned_data
        return RuleFields(
            kind=data["kind"],
            threshold=data["threshold"],
            enabled=data["enabled"],
            notify_email=data["notify_email"],
            webhook_url=data.get("webhook_url") or "",
            project_id=data["project"].pk if data.get("project") else None,
        )
