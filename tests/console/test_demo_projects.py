"""The demo's projects carry real, distinct usage, and its budgets show a share of their
levels without ever crossing an alert threshold, even at the end of a busy week and
month (what the served demo reaches by adding an hour's usage at a time)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.db.models import Sum

from accounts.models import APIKey, Project
from alerts.models import AlertNotification
from alerts.services import alerts_evaluate
from console.demo import demo_seed
from spend.models import Budget
from usage.models import Controller, Job, Query, WorkerSession

pytestmark = pytest.mark.django_db

# A Sunday evening, the last but one day of November: the week's and the month's usage
# are nearly all in.
END_OF_WEEK = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)


def spent(budget: Budget) -> Decimal:
    """Credits charged in the budget's period, straight from the records (every demo
    record is charged when ingested; no reservations)."""
    since = datetime(2026, 11, 1, tzinfo=UTC)
    if budget.period == "week":
        since = datetime(2026, 11, 23, tzinfo=UTC)
    total = Decimal(0)
    for model, moment in (
        (Query, "occurred_at"),
        (Job, "submitted_at"),
        (WorkerSession, "started_at"),
    ):
        rows = model.objects.filter(organization=budget.organization, **{f"{moment}__gte": since})
        if budget.project_id:
            rows = rows.filter(project=budget.project)
        if budget.api_key_id:
            rows = rows.filter(api_key=budget.api_key)
        total += rows.aggregate(s=Sum("credits"))["s"] or 0
    return total


def test_demo_usage_and_budgets_spread_over_the_projects_without_alerting():
    with time_machine.travel(END_OF_WEEK, tick=False):
        logins = demo_seed(days=29)
        org = logins.organization
        fired = alerts_evaluate(org=org)
    projects = {p.name: p for p in Project.objects.filter(organization=org)}
    assert set(projects) == {"Default", "Research", "Production app"}

    # Every project sends its share of each kind of usage, through its keys.
    def credits(model, project):
        rows = model.objects.filter(organization=org, project=projects[project])
        return rows.aggregate(s=Sum("credits"))["s"] or Decimal(0)

    for name in projects:
        assert credits(Job, name) > 0 and Query.objects.filter(project=projects[name]).exists()
    assert credits(WorkerSession, "Production app") > credits(WorkerSession, "Research") > 0
    jobs = {name: credits(Job, name) for name in projects}
    assert len(set(jobs.values())) == 3
    assert {c.name: c.project.name for c in Controller.objects.filter(organization=org)} == {
        "dgx-01": "Default",
        "gpu-box-02": "Production app",
        "lab-node-03": "Research",
    }
    assert set(
        APIKey.objects.filter(organization=org, project=projects["Default"]).values_list(
            "name", flat=True
        )
    ) == {"Old CI key", "CI pipeline"}

    # The budgets: a meaningful share of each soft level, under its lowest threshold.
    budgets = list(Budget.objects.filter(organization=org))
    assert {(b.scope, b.subject_label, b.period) for b in budgets} == {
        ("organization", "organization", "month"),
        ("project", "Production app", "month"),
        ("project", "Research", "month"),
        ("api_key", "Ana's notebook", "week"),
    }
    for budget in budgets:
        share = spent(budget) / budget.soft_limit * 100
        assert 15 < share < min(budget.thresholds), (str(budget), share)
        assert budget.hard_limit is None or spent(budget) < budget.hard_limit
    assert [n for n in fired if n.rule.kind == "budget"] == []
    assert not AlertNotification.objects.filter(organization=org, rule__kind="budget").exists()
    assert mail.outbox == []

    # A rerun makes no second set.
    with time_machine.travel(END_OF_WEEK, tick=False):
        demo_seed(days=1)
    assert Budget.objects.filter(organization=org).count() == 4
