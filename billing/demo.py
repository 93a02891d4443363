"""Demo billing data: six months of payments, a declined attempt and an auto-recharge rule.

Usage debits come from the usage demo, which sends its records through ingestion, so
every debit in the demo ledger links to the records it charged. Idempotent: every
payment has a fixed idempotency key, and the timeline is anchored on the
organization's creation time, so running the demo again changes no rows.
"""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction

from accounts.models import Organization
from billing.cards import CardDetails
from billing.models import CreditAccount, PaymentMethod, PaymentSource
from billing.services import (
    auto_recharge_set,
    credits_purchase,
    payment_confirm,
    payment_method_save,
    payment_prepare,
)

# (days before the anchor, dollars)
PAYMENTS = [(180, 100), (120, 250), (75, 100), (40, 150), (12, 200)]
DECLINED_ATTEMPT_DAYS = 41


def _card(number: str, anchor_year: int) -> CardDetails:
    return CardDetails(number=number, exp_month=12, exp_year=anchor_year + 4, cvc="123")


def _saved_card(org: Organization, anchor_year: int) -> PaymentMethod:
    method = PaymentMethod.objects.filter(organization=org, provider="sandbox").first()
    return method or payment_method_save(org=org, card=_card("4242424242424242", anchor_year))


@transaction.atomic
def billing_demo_seed(org: Organization) -> None:
    """Payments, a declined attempt and an auto-recharge rule."""
    anchor = org.created_at
    method = _saved_card(org, anchor.year)
    events: list[tuple] = []
    for n, (days_ago, dollars) in enumerate(PAYMENTS, start=1):
        events.append((anchor - timedelta(days=days_ago), "payment", n, dollars))
    events.append((anchor - timedelta(days=DECLINED_ATTEMPT_DAYS), "declined", 0, 75))
    events.sort(key=lambda event: (event[0], event[1]))

    for at, what, ident, value in events:
        if what == "payment":
            credits_purchase(
                org=org,
                amount_minor=value * 100,
                method=method,
                idempotency_key=f"demo-payment-{ident}",
                source=PaymentSource.MANUAL,
                at=at,
            )
        else:
            payment = payment_prepare(
                org=org,
                amount_minor=value * 100,
                idempotency_key="demo-payment-declined",
                card=_card("4000000000000002", anchor.year),
                at=at,
            )
            payment_confirm(org=org, payment_id=payment.pk, at=at)
    if not CreditAccount.objects.filter(organization=org, auto_recharge_below__isnull=False):
        auto_recharge_set(org=org, below=Decimal("50"), amount_minor=10000, method=method)
