"""Demo billing data: six months of payments, a declined attempt and an auto-recharge rule.

Usage debits come from the usage demo, which sends its records through ingestion, so
every debit in the demo ledger links to the records it charged. Idempotent: every
payment has a fixed idempotency key, and the timeline is anchored on the
organization's creation time, so running the demo again changes no rows.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

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


DemoEvent = tuple[datetime, Callable[[], object]]


def billing_demo_events(org: Organization) -> list[DemoEvent]:
    """The demo's payments as (time, action) in time order, for a caller that interleaves
    them with usage so every ledger entry is posted in the order of its time (and each
    "balance after" follows from the one before)."""
    anchor = org.created_at
    method = _saved_card(org, anchor.year)

    def purchase(n: int, dollars: int, at: datetime) -> Callable[[], object]:
        return lambda: credits_purchase(
            org=org,
            amount_minor=dollars * 100,
            method=method,
            idempotency_key=f"demo-payment-{n}",
            source=PaymentSource.MANUAL,
            at=at,
        )

    def declined(dollars: int, at: datetime) -> Callable[[], object]:
        def attempt() -> object:
            payment = payment_prepare(
                org=org,
                amount_minor=dollars * 100,
                idempotency_key="demo-payment-declined",
                card=_card("4000000000000002", anchor.year),
                at=at,
            )
            return payment_confirm(org=org, payment_id=payment.pk, at=at)

        return attempt

    events: list[DemoEvent] = []
    for n, (days_ago, dollars) in enumerate(PAYMENTS, start=1):
        at = anchor - timedelta(days=days_ago)
        events.append((at, purchase(n, dollars, at)))
    at = anchor - timedelta(days=DECLINED_ATTEMPT_DAYS)
    events.append((at, declined(75, at)))
    events.sort(key=lambda event: event[0])
    return events


def billing_demo_auto_recharge(org: Organization) -> None:
    """The demo's auto-recharge rule (below 50 credits, buy $100 with the saved card)."""
    method = _saved_card(org, org.created_at.year)
    if not CreditAccount.objects.filter(organization=org, auto_recharge_below__isnull=False):
        auto_recharge_set(org=org, below=Decimal("50"), amount_minor=10000, method=method)
