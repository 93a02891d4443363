"""Demo billing data: six months of payments and four months of daily usage by model.

Idempotent: every payment and ledger entry has a fixed idempotency key, and the
timeline is anchored on the organization's creation time, so running the demo again
replays the same keys and changes no rows.
"""

import hashlib
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from billing.cards import CardDetails
from billing.models import CreditAccount, EntryKind, PaymentMethod, PaymentSource
from billing.services import (
    auto_recharge_set,
    credits_purchase,
    ledger_post,
    payment_confirm,
    payment_method_save,
    payment_prepare,
)

# (days before the anchor, dollars)
PAYMENTS = [(180, 100), (120, 250), (75, 100), (40, 150), (12, 200)]
DECLINED_ATTEMPT_DAYS = 41
USAGE_DAYS = 120
# Typical daily spend per model in credits; each day varies from 50% to 150% of it.
DAILY_SPEND = {
    "llama-3.1-70b": Decimal("2.40"),
    "llama-3.1-8b": Decimal("1.10"),
    "phi-3-mini": Decimal("0.45"),
    "e5-large-v2": Decimal("0.12"),
}


def _variation(key: str) -> Decimal:
    """A stable factor from 0.50 to 1.50 for this key (the same on every run)."""
    digest = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return Decimal("0.5") + Decimal(digest % 1001) / 1000


def _card(number: str, anchor_year: int) -> CardDetails:
    return CardDetails(number=number, exp_month=12, exp_year=anchor_year + 4, cvc="123")


def _saved_card(org: Organization, anchor_year: int) -> PaymentMethod:
    method = PaymentMethod.objects.filter(organization=org, provider="sandbox").first()
    return method or payment_method_save(org=org, card=_card("4242424242424242", anchor_year))


@transaction.atomic
def billing_demo_seed(org: Organization) -> None:
    """Payments, a declined attempt, daily usage debits by model and an auto-recharge rule."""
    anchor = org.created_at
    method = _saved_card(org, anchor.year)
    events: list[tuple] = []
    for n, (days_ago, dollars) in enumerate(PAYMENTS, start=1):
        events.append((anchor - timedelta(days=days_ago), "payment", n, dollars))
    events.append((anchor - timedelta(days=DECLINED_ATTEMPT_DAYS), "declined", 0, 75))
    for days_ago in range(USAGE_DAYS, 0, -1):
        at = anchor - timedelta(days=days_ago, hours=-18)
        for model, typical in DAILY_SPEND.items():
            events.append((at, "usage", model, typical))
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
        elif what == "declined":
            payment = payment_prepare(
                org=org,
                amount_minor=value * 100,
                idempotency_key="demo-payment-declined",
                card=_card("4000000000000002", anchor.year),
                at=at,
            )
            payment_confirm(org=org, payment_id=payment.pk, at=at)
        else:
            day = timezone.localdate(at).isoformat()
            key = f"demo-usage:{day}:{ident}"
            ledger_post(
                org=org,
                kind=EntryKind.USAGE,
                amount=-(value * _variation(key)).quantize(Decimal("0.0001")),
                reason=f"Usage on {day}: {ident}",
                idempotency_key=key,
                reference=f"usage-day:{day}",
                model_name=ident,
                at=at,
            )
    if not CreditAccount.objects.filter(organization=org, auto_recharge_below__isnull=False):
        auto_recharge_set(org=org, below=Decimal("50"), amount_minor=10000, method=method)
