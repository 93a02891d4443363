"""Budget thresholds as alert conditions: a rule of kind "budget" (made with the
organization's first budget) watches each budget's thresholds (50/80/100% of its soft
level by default) and clears when the period resets.

One notification per budget period for the highest threshold crossed: a budget that
jumps past 50%, 80% and 100% at once fires once, for 100%; a later, higher crossing in
the same period fires again and closes the lower one (one banner per budget), and a
threshold already told of in the period never fires again in it, even after a refund
takes the spending back under it. The rule's threshold is the lowest percentage it
reports. Registered with the alerts' condition sources in the alerts' AppConfig.ready.
"""

from datetime import datetime
from decimal import Decimal

from django.db.models import Q

from accounts.models import Organization
from alerts.models import AlertKind, AlertNotification, AlertRule
from alerts.selectors import Condition
from billing.money import credits_display
from core.calendar import org_zone
from spend.selectors.budgets import BudgetFigures, budget_figures, budgets_of
from usage.windows import period_of


def _told_this_period(
    *, rule: AlertRule, figures: list[BudgetFigures], org: Organization, now: datetime
) -> dict[int, tuple[set[int], set[int]]]:
    """Per budget: the thresholds notified in its current period, and those still open
    (one query)."""
    tz = org_zone(org)
    starts = {f.budget.pk: period_of(f.budget.period, now=now, tz=tz).start for f in figures}
    told: dict[int, tuple[set[int], set[int]]] = {pk: (set(), set()) for pk in starts}
    if not starts:
        return told
    rows = AlertNotification.objects.filter(
        organization=org, rule=rule, kind=AlertKind.BUDGET, fired_at__gte=min(starts.values())
    ).values_list("subject", "fired_at", "cleared_at")
    for subject, fired_at, cleared_at in rows:
        _, budget, threshold = (subject.split(":") + ["", ""])[:3]
        if not budget.isdigit() or not threshold.isdigit() or int(budget) not in starts:
            continue
        if fired_at >= starts[int(budget)]:
            fired, still_open = told[int(budget)]
            fired.add(int(threshold))
            if cleared_at is None:
                still_open.add(int(threshold))
    return told


def budget_conditions(*, rule: AlertRule, org: Organization, now: datetime) -> list[Condition]:
    """One condition per budget and threshold; only the highest threshold crossed holds,
    and only if no higher or equal one was told of earlier in the period."""
    budgets = budgets_of(org=org)
    if rule.project_id is not None:  # the budgets of the project and of its keys
        budgets = budgets.filter(
            Q(project_id=rule.project_id) | Q(api_key__project_id=rule.project_id)
        )
    figures = budget_figures(org=org, budgets=list(budgets), now=now)
    told = _told_this_period(rule=rule, figures=figures, org=org, now=now)
    conditions = []
    for f in figures:
        b = f.budget
        percent = f.spent / b.soft_limit * 100 if b.soft_limit else Decimal(0)
        name = (
            f"{b.get_scope_display()}{'' if b.scope == 'organization' else ' ' + b.subject_label}"
        )
        watched = sorted(t for t in b.thresholds if t >= rule.threshold)
        crossed = [t for t in watched if b.soft_limit and percent >= t]
        highest = crossed[-1] if crossed else None
        fired, still_open = told[b.pk]
        for threshold in watched:
            holds = threshold == highest and (
                threshold in still_open or threshold > max(fired, default=-1)
            )
            passed = [t for t in crossed if t < threshold]
            also = ""
            if passed:
                listed = [f"{t}%" for t in passed]
                also = ", past " + (
                    f"{', '.join(listed[:-1])} and {listed[-1]}" if len(listed) > 1 else listed[0]
                )
                also += " too"
            conditions.append(
                Condition(
                    subject=f"budget:{b.pk}:{threshold}",
                    holds=holds,
                    message=(
                        f"{name} {b.get_period_display().lower()} budget reached {threshold}% "
                        f"of its soft level{also}: {credits_display(f.spent)} of "
                        f"{credits_display(b.soft_limit)} credits"
                        + (
                            f"; over its hard level by {credits_display(f.over_by)} credits"
                            if f.state == "over"
                            else ""
                        )
                        + "."
                    ),
                    figures={
                        "budget": b.pk,
                        "api_key": b.api_key_id,
                        "member": b.member,
                        "project": b.project_id,
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
        organization=org, kind=AlertKind.BUDGET, threshold=Decimal(0), project=None
    )
    return rule
