"""Every succeeded (or since refunded) payment made before receipts existed gets its
receipt, numbered per organization in the order the payments completed; a refunded one
also gets its refund receipt. Buyer: the organization's name (no billing details yet)."""

from django.conf import settings
from django.db import migrations


def forwards(apps, schema_editor):
    Payment = apps.get_model("billing", "Payment")
    Receipt = apps.get_model("billing", "Receipt")
    seller_settings = settings.BILLING_SELLER or {}
    seller = {k: str(seller_settings.get(k, "")) for k in ("name", "address", "tax_id", "email")}
    numbers: dict[int, int] = {}
    events = []
    for payment in Payment.objects.filter(status__in=["succeeded", "refunded"]).select_related(
        "organization"
    ):
        events.append((payment.completed_at or payment.created_at, payment.pk, "payment", payment))
        if payment.status == "refunded":
            events.append((payment.refunded_at or payment.completed_at, payment.pk, "refund", payment))
    for at, _pk, kind, payment in sorted(events, key=lambda e: (e[0], e[1], e[2] == "refund")):
        org_id = payment.organization_id
        numbers[org_id] = numbers.get(org_id, 0) + 1
        Receipt.objects.create(
            organization_id=org_id,
            number=numbers[org_id],
            kind=kind,
            payment=payment,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            credits=payment.credits,
            card_brand=payment.card_brand,
            card_last4=payment.card_last4,
            seller=seller,
            buyer={"legal_name": payment.organization.name, "address": "", "country": "",
                   "tax_id": "", "billing_email": ""},
            issued_at=at,
        )


class Migration(migrations.Migration):
    replaces = [
        ("billing", "0009_receipts_for_past_payments"),
        ("billing", "0010_merge_documents"),
    ]

    dependencies = [("billing", "0009_receipts_statements_billing_details")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
