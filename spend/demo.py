"""The demo organization's budgets: one for the organization, one for each of two
projects, one for a key, so the Budgets page and each project's page show spent, left and
the pace with real data.

The levels are set against what the demo spends (docs/projects.md): a month's usage of
the whole demo is about 900 credits, Production app's about 550, Research's about 250,
Ana's notebook's week under 25. Each budget's lowest alert threshold sits above what a
whole period of the demo reaches, so neither the first run nor the served demo's hourly
usage ever crosses one (no alert, no email), and the hard level stays far out of reach
(the demo's own requests are never refused, nothing is flagged over cap), while the
cards show a share that grows through the month.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from accounts.audit import audit_dated
from accounts.models import APIKey, Organization, Project, User
from spend.models import Budget, BudgetPeriod, BudgetScope
from spend.services.budgets import budget_create

# Alert at 75%, 90% and 100% of the soft level (the default 50% would be passed by the
# busiest months' ends).
DEMO_THRESHOLDS = [75, 90, 100]


@dataclass(frozen=True)
class DemoBudget:
    scope: str
    period: str
    soft: Decimal
    hard: Decimal | None = None
    subject: str = ""  # the project's or the key's name


DEMO_BUDGETS = [
    DemoBudget(BudgetScope.ORGANIZATION, BudgetPeriod.MONTH, Decimal(1500)),
    DemoBudget(
        BudgetScope.PROJECT, BudgetPeriod.MONTH, Decimal(900), Decimal(1200), "Production app"
    ),
    DemoBudget(BudgetScope.PROJECT, BudgetPeriod.MONTH, Decimal(450), subject="Research"),
    DemoBudget(BudgetScope.API_KEY, BudgetPeriod.WEEK, Decimal(60), subject="Ana's notebook"),
]


def budgets_demo_ensure(*, org: Organization, at: datetime, actor: User | None = None) -> int:
    """The demo's budgets, made once (a rerun finds them, and leaves levels someone
    changed alone), dated `at`; how many were made. A budget whose project or key the
    organization lacks (an organization made without the demo's projects) is skipped."""
    made = 0
    for spec in DEMO_BUDGETS:
        project = key = None
        if spec.scope == BudgetScope.PROJECT:
            project = Project.objects.filter(organization=org, name=spec.subject).first()
            if project is None:
                continue
        if spec.scope == BudgetScope.API_KEY:
            key = APIKey.objects.filter(
                organization=org, name=spec.subject, revoked_at__isnull=True
            ).first()
            if key is None:
                continue
        exists = Budget.objects.filter(
            organization=org, scope=spec.scope, period=spec.period, project=project, api_key=key
        ).exists()
        if exists:
            continue
        with audit_dated(at):
            budget = budget_create(
                org=org,
                scope=spec.scope,
                period=spec.period,
                soft_limit=spec.soft,
                hard_limit=spec.hard,
                project_id=project.pk if project else None,
                api_key_id=key.pk if key else None,
                thresholds=DEMO_THRESHOLDS,
                actor=actor,
            )
        Budget.objects.filter(pk=budget.pk).update(created_at=at, updated_at=at)
        made += 1
    return made
