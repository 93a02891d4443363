"""Django admin opens on the platform overview: figures over every organization, each
linking to its admin list, in a fixed number of queries. Expected figures are written out
by hand from the seed below, never computed by the selector under test."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Tier
from accounts.projects import project_default_for
from billing.models import ReconciliationIssue
from billing.services import ledger_post, payment_refund
from console.selectors import platform_overview
from core.models import SweepRun
from core.sweeps import sweep_run_record
from tests.factories import grant_credits, make_org, make_payment, make_query, make_user
from usage.models import IngestBatch

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LAST_MONTH = datetime(2026, 10, 28, 9, 0, tzinfo=UTC)

# name, tier, tokens this month, tokens last month
ORGS = [
    ("Alpha", Tier.STARTUP, 23_000_000, 30_000_000),  # 92% of 25M: near its allocation
    ("Beta", Tier.DEVELOPER, 1_000_000, 0),  # 20% of 5M
    ("Gamma", Tier.FREE, 95_000, 0),  # 95% of 100K: near, and a low balance
    ("Delta", Tier.ENTERPRISE, 900_000_000, 0),  # unlimited: never near
]


def usage(org, amount: str, at: datetime, key: str) -> None:
    ledger_post(
        org=org, kind="usage", amount=-D(amount), reason="Usage", idempotency_key=key, at=at
    )


@pytest.fixture
def platform(time_machine):
    time_machine.move_to(LAST_MONTH, tick=False)
    orgs = {name: make_org(name=name, tier=tier) for name, tier, _, _ in ORGS}
    orgs["Delta"].allow_overdraft = True  # enterprise on invoice: may go below zero
    orgs["Delta"].save(update_fields=["allow_overdraft"])
    for name, _, _, last_month in ORGS:
        if last_month:
            make_query(
                org=orgs[name], occurred_at=LAST_MONTH, input_tokens=last_month, output_tokens=0
            )
    grant_credits(org=orgs["Alpha"], amount="100")
    make_payment(org=orgs["Beta"], amount_minor=4000)  # last month: not this month's money
    usage(orgs["Alpha"], "40", LAST_MONTH, "a-old")  # last month's spend

    time_machine.move_to(NOW - timedelta(days=2), tick=False)
    for name, _, this_month, _ in ORGS:
        make_query(
            org=orgs[name],
            occurred_at=NOW - timedelta(days=2),
            input_tokens=this_month,
            output_tokens=0,
        )
    make_payment(org=orgs["Alpha"], amount_minor=5000)  # $50
    refunded = make_payment(org=orgs["Beta"], amount_minor=2000)  # $20, refunded below
    make_payment(org=orgs["Beta"], amount_minor=1250)  # $12.50
    grant_credits(org=orgs["Gamma"], amount="5")
    usage(orgs["Alpha"], "30.25", NOW - timedelta(days=2), "a-1")
    usage(orgs["Beta"], "2.5", NOW - timedelta(days=2), "b-1")
    usage(orgs["Gamma"], "0.0004", NOW - timedelta(days=2), "g-1")
    ledger_post(
        org=orgs["Delta"], kind="adjustment", amount=D("-3"), reason="x", idempotency_key="d"
    )

    time_machine.move_to(NOW, tick=False)
    payment_refund(payment_id=refunded.pk, actor=None, reason="asked")
    for minutes, accepted in [(30, 7), (300, 11), (60 * 49, 13)]:
        IngestBatch.objects.create(
            organization=orgs["Alpha"],
            project=project_default_for(org=orgs["Alpha"]),
            accepted=accepted,
            received_at=NOW - timedelta(minutes=minutes),
        )
    for days in (1, 20):
        ReconciliationIssue.objects.create(
            organization=orgs["Beta"],
            kind="balance",
            message="m",
            detected_at=NOW - timedelta(days=days),
        )
    sweep_run_record(task="usage.rollup_sweep", ok=False, error="OperationalError()")
    sweep_run_record(task="usage.rollup_sweep", ok=False, error="OperationalError()")
    sweep_run_record(task="alerts.tasks.alerts_evaluate_due", ok=True)
    return orgs


@pytest.mark.parametrize(
    ("figure", "expected"),
    [
        # Alpha 100 + 50 - 40 - 30.25 = 79.75; Beta 40 + 12.50 - 2.5 = 50; Gamma 5 - 0.0004.
        ("credits_outstanding", D("79.75") + D("50") + D("4.9996")),
        ("organizations_in_credit", 3),
        ("organizations_overdrawn", 1),  # Delta, -3
        ("payments_count", 3),  # Alpha 50, Beta 20 (refunded since) and 12.50; not October's
        ("payments_amount", D("82.50")),
        ("refunds_count", 1),
        ("refunds_amount", D("20")),
        ("records_last_hour", 7),
        ("records_last_day", 18),
        ("reconciliation_issues", 2),
        ("reconciliation_issues_recent", 1),
    ],
)
def test_each_overview_figure_equals_a_sum_over_the_seeded_organizations(
    platform, figure, expected
):
    assert getattr(platform_overview(), figure) == expected


def test_the_lists_name_the_right_organizations(platform):
    overview = platform_overview()
    assert [(f.name, f.value) for f in overview.top_spenders] == [
        ("Alpha", D("30.25")),
        ("Beta", D("2.5")),
        ("Gamma", D("0.0004")),
    ]
    assert [f.name for f in overview.near_allocation] == ["Gamma", "Alpha"]  # 95%, then 92%
    assert [(f.name, f.value) for f in overview.low_balance] == [
        ("Delta", D("-3")),
        ("Gamma", D("4.9996")),
    ]
    assert [s.task for s in overview.failing_sweeps] == ["usage.rollup_sweep"]
    assert SweepRun.objects.get(task="usage.rollup_sweep").failures_in_a_row == 2


def test_the_query_count_does_not_grow_with_the_organizations(platform):
    with CaptureQueriesContext(connection) as few:
        platform_overview()
    for n in range(6):
        org = make_org(name=f"More {n}", tier=Tier.FREE)
        grant_credits(org=org, amount="3")
        make_query(org=org, occurred_at=NOW, input_tokens=99_000, output_tokens=0)
        usage(org, "1", NOW, f"more-{n}")
    with CaptureQueriesContext(connection) as many:
        overview = platform_overview()
    assert len(overview.near_allocation) == 8
    assert len(many) == len(few) <= 9


def test_admin_opens_on_the_overview_and_every_figure_links_to_its_list(client, platform):
    operator = make_user(email="ops@example.com", is_staff=True, is_superuser=True)
    client.force_login(operator)
    response = client.get("/admin/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<title>Platform overview | Usage Console administration</title>" in html
    assert (
        "Usage Console administration</a></div>" in html or "Usage Console administration" in html
    )
    overview = html[html.index('data-testid="platform-overview"') :]
    assert 'data-testid="credits-outstanding"' in overview and "134.75" in overview
    assert "$82.50" in overview and "$20.00" in overview
    links = set(re.findall(r'href="(/admin/[^"]+)"', overview))
    assert len(links) >= 10
    for link in links:
        page = client.get(link.replace("&amp;", "&"))
        assert page.status_code == 200, link
        assert "?e=1" not in page.get("Location", ""), link
    # The links filter what the figure counts: this month's succeeded and refunded payments.
    payments = next(link for link in links if link.startswith("/admin/billing/payment/?completed"))
    listed = client.get(payments.replace("&amp;", "&")).context["cl"].result_count
    assert listed == 3


def test_admin_overview_page_costs_the_same_at_any_number_of_organizations(
    client, platform, django_assert_max_num_queries
):
    client.force_login(make_user(email="ops@example.com", is_staff=True, is_superuser=True))
    with CaptureQueriesContext(connection) as first:
        client.get("/admin/")
    for n in range(5):
        org = make_org(name=f"Extra {n}")
        grant_credits(org=org, amount="1")
    with django_assert_max_num_queries(len(first.captured_queries)):
        client.get("/admin/")


def test_a_failing_sweep_is_recorded_and_cleared_by_its_next_success(monkeypatch):
    from console.tasks import worker_health
    from rollups.tasks import rollup_sweep

    def broken():
        raise RuntimeError("database went away")

    monkeypatch.setattr("rollups.services.days.rollup_due", broken)
    # As a worker runs it: the error is the task's result, and Celery signals the failure.
    assert rollup_sweep.apply(throw=False).failed()
    run = SweepRun.objects.get(task="usage.rollup_sweep")
    assert run.failing and run.failures_in_a_row == 1 and "database went away" in run.last_error
    assert [s.task for s in platform_overview().failing_sweeps] == ["usage.rollup_sweep"]

    monkeypatch.setattr("rollups.services.days.rollup_due", lambda: [])
    rollup_sweep.apply()
    run.refresh_from_db()
    assert not run.failing and run.last_succeeded_at is not None
    assert platform_overview().failing_sweeps == []
    # Tasks the beat does not schedule are not sweeps: nothing recorded for them.
    worker_health.apply()
    assert SweepRun.objects.count() == 1
