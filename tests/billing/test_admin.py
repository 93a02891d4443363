from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Tier
from billing.models import LedgerEntry, Payment, PaymentStatus, PriceModel
from billing.services import ledger_post
from tests.factories import make_org, make_payment, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = make_user(is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def test_the_ledger_is_read_only_in_admin(client, operator):
    org = make_org()
    entry = ledger_post(
        org=org, kind="grant", amount=Decimal("5"), reason="x", idempotency_key="k"
    ).entry
    assert client.get(reverse("admin:billing_ledgerentry_changelist")).status_code == 200
    assert client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403
    change = client.post(
        reverse("admin:billing_ledgerentry_change", args=[entry.pk]), {"amount": "500"}
    )
    assert change.status_code == 403
    assert (
        client.post(reverse("admin:billing_ledgerentry_delete", args=[entry.pk])).status_code == 403
    )
    entry.refresh_from_db()
    assert entry.amount == Decimal("5")


def test_an_adjustment_needs_a_reason_and_posts_once(client, operator):
    org = make_org(tier=Tier.STARTUP)
    ledger_post(org=org, kind="grant", amount=Decimal("10"), reason="x", idempotency_key="g")
    adjust = reverse("admin:billing_ledgerentry_adjust")
    form = client.get(adjust, {"organization": org.pk}).context["form"]
    key = form.initial["idempotency_key"]
    blank = client.post(
        adjust, {"organization": org.pk, "amount": "-4", "reason": " ", "idempotency_key": key}
    )
    assert blank.status_code == 200
    assert "reason" in blank.context["form"].errors
    data = {
        "organization": org.pk,
        "amount": "-4",
        "reason": "Duplicate charge on 3 Nov",
        "idempotency_key": key,
    }
    assert client.post(adjust, data).status_code == 302
    assert client.post(adjust, data).status_code == 302  # resubmitted: posted once
    entry = LedgerEntry.objects.get(organization=org, kind="adjustment")
    assert (entry.amount, entry.reason, entry.actor) == (
        Decimal("-4"),
        "Duplicate charge on 3 Nov",
        operator,
    )
    too_much = {**data, "amount": "-100", "idempotency_key": "other"}
    response = client.post(adjust, too_much)
    assert b"does not cover" in response.content  # no-overdraft org stays at or above zero


def test_adjustment_needs_the_permission(client):
    client.force_login(make_user(is_staff=True))
    assert client.get(reverse("admin:billing_ledgerentry_adjust")).status_code == 403


def test_credit_account_action_opens_the_adjustment_form(client, operator):
    org = make_org()
    ledger_post(org=org, kind="grant", amount=Decimal("1"), reason="x", idempotency_key="g")
    response = client.post(
        reverse("admin:billing_creditaccount_changelist"),
        {"action": "post_adjustment", "_selected_action": [org.pk]},
    )
    assert response.status_code == 302
    assert response["Location"].endswith(f"adjust/?organization={org.pk}")


def test_refund_action_posts_a_refund_entry(client, operator):
    org = make_org()
    payment = make_payment(org=org, amount_minor=1500)
    declined = make_payment(org=org, number="4000000000000002")
    response = client.post(
        reverse("admin:billing_payment_changelist"),
        {"action": "refund", "_selected_action": [payment.pk, declined.pk]},
        follow=True,
    )
    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    refund = LedgerEntry.objects.get(organization=org, kind="refund")
    assert refund.amount == Decimal("-15")
    assert refund.actor == operator
    messages = [str(m) for m in response.context["messages"]]
    assert any("Only a succeeded payment" in m for m in messages)
    assert Payment.objects.get(pk=declined.pk).status == PaymentStatus.DECLINED


def test_payments_are_read_only(client, operator):
    payment = make_payment(org=make_org())
    assert client.get(reverse("admin:billing_payment_add")).status_code == 403
    page = client.get(reverse("admin:billing_payment_change", args=[payment.pk]))
    assert page.status_code == 200  # viewable
    assert b"pm_sandbox" not in page.content  # the card token is not shown


def test_the_price_list_is_editable(client, operator):
    model = PriceModel.objects.get(name="llama-3.1-8b")
    response = client.post(
        reverse("admin:billing_pricemodel_change", args=[model.pk]),
        {
            "name": "llama-3.1-8b",
            "input_price_per_million": "0.12",
            "output_price_per_million": "0.12",
            "worker_hour_rate": "0.60",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    model.refresh_from_db()
    assert model.input_price_per_million == Decimal("0.12")
