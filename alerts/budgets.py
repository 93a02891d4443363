"""Budget thresholds as alert conditions: a rule of kind "budget" (made with the
organization's first budget) fires once per crossing of each budget's thresholds
(50/80/100% of its soft level by default), and clears when the period resets.

Registered with the alerts' condition sources in the alerts' AppConfig.ready. Alerts sit
above usage, so reading budget figures from usage's selectors is the layers' own
direction. The rule's threshold is the lowest percentage it reports.
"""

from datetime import datetime
from decimal import Decimal

from accounts.models import Organization
from alerts.models import AlertKind, AlertRule
from alerts.selectors import Condition
from billing.money import credits_display
from usage.selectors.budgets import budget_figures, budgets_of


def budget_conditions(*, rule: AlertRule, org: Organization, now: datetime) -> list[Condition]:
    """One condition per budget and threshold: spent has reached that share of the soft
    level in the current period."""
    conditions = []
    for f in budget_figures(org=org, budgets=list(budgets_of(org=org)), now=now):
        b = f.budget
        percent = f.spent / b.soft_limit * 100 if b.soft_limit else Decimal(0)
        name = (
            f"{b.get_scope_display()}{'' if b.scope == 'organization' else ' ' + b.subject_label}"
        )
        for threshold in b.thresholds:
            if threshold < rule.threshold:
                continue
            conditions.append(
                Condition(
                    subject=f"budget:{b.pk}:{threshold}",
                    holds=bool(b.soft_limit) and percent >= threshold,
                    message=(
                        f"{name} {b.get_period_display().lower()} budget reached {threshold}% "
                        f"of its soft level: {credits_display(f.spent)} of "
                        f"{credits_display(b.soft_limit)} credits"
                    ),
                    figures={
                        "budget": b.pk,
                        "api_key": b.api_key_id,
                        "member": b.member,
                        "spent": str(f.spent),
                        "soft_limit": str(b.soft_limit),
                        "percent": threshold,
                        "resets_at": f.resets_at.isoformat(),
                    },
                )
            )
    return conditions


def budget_alert_rule_ensure(*, org: Organization) -> AlertRule:
    """The organization's budget alert rule, made on its first budget."""
    rule, _created = AlertRule.objects.get_or_create(
        organization=org, kind=AlertKind.BUDGET, threshold=Decimal(0)
    )
    return rule
