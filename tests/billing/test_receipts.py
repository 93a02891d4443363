"""Receipts: one per successful payment and per refund, numbered 1, 2, 3... per
organization, with the payment's amount, credits and card, the seller's details and the
buyer's billing details as they were at payment time; HTML and PDF."""

import io
from decimal import Decimal as D

import pytest
from django.urls import reverse
from pypdf import PdfReader

from accounts.models import Role
from billing.models import Receipt
from billing.services import BillingDetailsFields, billing_details_update, payment_refund
from tests.factories import make_member, make_payment

pytestmark = pytest.mark.django_db

DECLINED = "4000000000000002"


def test_numbers_run_per_organization_and_only_successes_and_refunds_get_one(settings):
    a = make_member(role=Role.OWNER).organization
    b = make_member(role=Role.OWNER).organization
    p1 = make_payment(org=a, amount_minor=1000)
    make_payment(org=a, amount_minor=1500, number=DECLINED)
    pb = make_payment(org=b, amount_minor=700)
    p2 = make_payment(org=a, amount_minor=2000)
    payment_refund(payment_id=p1.pk, actor=None)
    rows = list(Receipt.objects.filter(organization=a).order_by("number")
                .values_list("number", "kind", "payment_id", "amount_minor"))  # fmt: skip
    assert rows == [(1, "payment", p1.pk, 1000), (2, "payment", p2.pk, 2000),
                    (3, "refund", p1.pk, 1000)]  # fmt: skip
    assert Receipt.objects.get(organization=b).number == 1 and pb.receipts.count() == 1


def test_a_receipt_keeps_the_billing_details_of_its_payment_time(client, settings):
    settings.BILLING_SELLER = {"name": "Console Inc.", "address": "1 Main St", "tax_id": "US-99",
                               "email": "billing@console.example"}  # fmt: skip
    owner = make_member(role=Role.OWNER)
    org = owner.organization
    billing_details_update(org=org, actor=owner.user, fields=BillingDetailsFields(
        legal_name="Old Name Ltd", address="1 Old Road", country="United Kingdom",
        tax_id="GB111", billing_email="ap@old.example"))  # fmt: skip
    first = make_payment(org=org, amount_minor=4200)  # sandbox Visa 4242
    billing_details_update(org=org, actor=owner.user,
                           fields=BillingDetailsFields(legal_name="New Name Ltd"))  # fmt: skip
    second = make_payment(org=org, amount_minor=1000)
    r1, r2 = Receipt.objects.get(payment=first), Receipt.objects.get(payment=second)
    assert (r1.amount_minor, r1.credits, r1.card_brand, r1.card_last4) == (
        4200,
        D("42"),
        "Visa",
        "4242",
    )
    assert r1.buyer["legal_name"] == "Old Name Ltd" and r1.buyer["tax_id"] == "GB111"
    assert r2.buyer["legal_name"] == "New Name Ltd" and r2.buyer["tax_id"] == ""
    client.force_login(owner.user)
    html = client.get(reverse("billing:receipt", args=[org.slug, r1.pk])).content.decode()
    assert "R-000001" in html and "$42.00 USD" in html and "Old Name Ltd" in html
    pdf = client.get(reverse("billing:receipt_pdf", args=[org.slug, r1.pk]))
    assert pdf["Content-Type"] == "application/pdf"
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    for expected in ("Receipt R-000001", "$42.00 USD", "42.00", "Visa", "4242", "Old Name Ltd",
                     "GB111", "Console Inc.", "US-99"):  # fmt: skip
        assert expected in text, expected
    dashboard = client.get(reverse("billing:dashboard", args=[org.slug])).content.decode()
    assert reverse("billing:receipt", args=[org.slug, r1.pk]) in dashboard


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_payments_get_twenty_consecutive_numbers():
    import threading

    from django.db import connection

    from tests.factories import make_org

    org = make_org()
    errors: list[BaseException] = []
    barrier = threading.Barrier(20)

    def pay(n: int) -> None:
        try:
            barrier.wait()
            make_payment(org=org, amount_minor=500 + n, key=f"concurrent-{n}")
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    numbers = sorted(Receipt.objects.filter(organization=org).values_list("number", flat=True))
    assert numbers == list(range(1, 21))
    amounts = set(Receipt.objects.filter(organization=org).values_list("amount_minor", flat=True))
    assert amounts == {500 + n for n in range(20)}
