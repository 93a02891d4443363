"""Figures as people see them on the pages, forms, CSV, audit log and admin: each kind
through its one formatter (docs/numbers.md)."""

from decimal import Decimal as D

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Role
from accounts.projects import project_default_for
from billing.services import auto_recharge_set, ledger_adjust
from tests.factories import (
    grant_credits,
    make_member,
    make_payment,
    make_payment_method,
    make_user,
)
from usage.models import IngestBatch

pytestmark = pytest.mark.django_db


def test_the_auto_recharge_form_shows_the_threshold_as_typed(client):
    member = make_member(role=Role.OWNER)
    org = member.organization
    method = make_payment_method(org=org)
    auto_recharge_set(org=org, below=D("50"), amount_minor=10000, method=method)
    client.force_login(member.user)
    page = client.get(reverse("billing:auto_recharge", args=[org.slug])).content.decode()
    assert 'name="below" value="50"' in page
    assert "50.0000000000" not in page
    assert 'name="amount" value="100"' in page
    assert "below 50.00 credits, buy $100.00" in page


def test_the_audit_log_says_credits_with_two_decimals_and_the_unit(client):
    member = make_member(role=Role.OWNER)
    org = member.organization
    make_payment(org=org, amount_minor=4250)
    method = make_payment_method(org=org)
    auto_recharge_set(org=org, below=D("7.5"), amount_minor=1000, method=method)
    summaries = list(AuditEvent.objects.filter(organization=org).values_list("summary", flat=True))
    assert "Payment of $42.50 for 42.50 credits · Visa •••• 4242 succeeded" in summaries
    assert any(s.startswith("Auto-recharge: below 7.50 credits, buy $10.00") for s in summaries)
    client.force_login(member.user)
    page = client.get(reverse("accounts:audit_log", args=[org.slug])).content.decode()
    assert "42.50 credits" in page and "42.5 credits" not in page


def test_an_operator_adjustment_is_recorded_exactly_with_its_sign():
    member = make_member(role=Role.OWNER)
    org = member.organization
    grant_credits(org=org, amount="10")
    operator = make_user(email="ops@example.com", is_staff=True)
    ledger_adjust(org=org, amount=D("-0.123456"), reason="Rounding fix", actor=operator,
                  idempotency_key="adj-1")  # fmt: skip
    summary = AuditEvent.objects.filter(organization=org).values_list("summary", flat=True)
    assert "Adjusted credits by -0.123456 credits: Rounding fix" in list(summary)


def test_the_finance_csv_reads_amounts_as_100_00(client):
    member = make_member(role=Role.OWNER)
    org = member.organization
    grant_credits(org=org, amount="100")
    client.force_login(member.user)
    response = client.get(reverse("billing:transactions_csv", args=[org.slug]))
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert ",100.00,100.00" in body  # amount, then balance after
    assert "100.0000000000" not in body


def test_the_ledger_shows_every_credit_column_at_one_precision(client):
    member = make_member(role=Role.OWNER)
    org = member.organization
    grant_credits(org=org, amount="12.69")
    grant_credits(org=org, amount="0.0041")
    client.force_login(member.user)
    page = client.get(reverse("billing:dashboard", args=[org.slug])).content.decode()
    ledger = page[page.index('data-testid="ledger"') :]
    # 0.0041 needs four decimals for its two significant digits: every cell gets four.
    assert ">+12.6900</td>" in ledger and ">+0.0041</td>" in ledger
    assert ">12.6941</td>" in ledger and ">12.6900</td>" in ledger


def test_admin_overview_groups_its_figures(client):
    org = make_member().organization
    IngestBatch.objects.create(
        organization=org, project=project_default_for(org=org), accepted=21152
    )
    operator = make_user(email="ops@example.com", is_staff=True, is_superuser=True)
    client.force_login(operator)
    html = client.get("/admin/").content.decode()
    assert '<span data-testid="records-last-hour">21,152</span>' in html
    assert '<span data-testid="records-last-day">21,152</span>' in html
    assert "0 payments since" in html and "0 refunds" in html


def test_the_chip_core_hours_and_the_main_page_runtime_say_how_they_relate(client):
    from django.core.cache import cache

    cache.clear()  # the chip caches the default worker's rate
    member = make_member(role=Role.OWNER)
    org = member.organization
    grant_credits(org=org, amount="100")
    client.force_login(member.user)
    page = client.get(reverse("main", args=[org.slug])).content.decode()
    # The standard worker: 0.50 credits an hour, 4 cores. 100 credits buy 200 worker-hours
    # (8 days 8 hours), which are 800 core-hours, the chip's figure.
    assert ">800.0 core-hours</span>" in page  # the chip
    assert "8 days 8 hours" in page
    assert (
        """That is the balance's <span data-testid="usage-time-core-hours">800.0 core-hours"""
        "</span> (the header's figure) over 4 cores a worker." in page
    )
    assert "The main page shows the same credits as worker runtime" in page  # chip's title
    assert "Usage time and core-hours price the same balance" not in page  # no runway yet


def test_admin_lists_show_credits_exactly_without_the_ledger_scale(client):
    member = make_member(role=Role.OWNER)
    grant_credits(org=member.organization, amount="100")
    make_payment(org=member.organization, amount_minor=4250)
    operator = make_user(email="ops@example.com", is_staff=True, is_superuser=True)
    client.force_login(operator)
    ledger = client.get("/admin/billing/ledgerentry/").content.decode()
    assert "142.50" in ledger and "100.0000000000" not in ledger
    payments = client.get("/admin/billing/payment/").content.decode()
    assert "$42.50" in payments and "42.5000000000" not in payments
    accounts = client.get("/admin/billing/creditaccount/?o=2").content.decode()  # sortable
    assert "142.50" in accounts
