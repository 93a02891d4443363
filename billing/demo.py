"""Demo billing data: six months of payments, a declined attempt, an auto-recharge rule
and the statements of the months closed since.

Usage debits come from the usage demo, which sends its records through ingestion, so
every debit in the demo ledger links to the records it charged. Idempotent: every
payment has a fixed idempotency key, and the timeline is anchored on the
organization's creation time, so running the demo again changes no rows.
"""

from collections.abc import Callable
from datetime import datetime, time, timedelta
from decimal import Decimal

from accounts.audit import audit_dated
from accounts.models import Membership, Organization, Role, User
from billing.cards import CardDetails
from billing.models import CreditAccount, PaymentMethod, PaymentSource, Statement
from billing.services import (
    auto_recharge_set,
    credits_purchase,
    payment_confirm,
    payment_method_save,
    payment_prepare,
    statement_issue,
)
from billing.services.statements import statement_months_due
from core.calendar import month_bounds, org_zone

# (days before the anchor, dollars, time of day in UTC)
PAYMENTS = [
    (180, 100, time(9, 12)),
    (120, 250, time(14, 37)),
    (75, 100, time(11, 5)),
    (40, 150, time(16, 48)),
    (12, 200, time(10, 21)),
]
DECLINED_ATTEMPT = (41, time(16, 40))
# The card was saved just before the first payment; auto-recharge turned on with the last.
CARD_SAVED_BEFORE_FIRST = timedelta(minutes=5)
AUTO_RECHARGE_AFTER_LAST = timedelta(minutes=2)
# The beat issues a month's statement at twenty past the first hour of the next month.
STATEMENT_ISSUED_AFTER_CLOSE = timedelta(minutes=20)


def _card(number: str, anchor_year: int) -> CardDetails:
    return CardDetails(number=number, exp_month=12, exp_year=anchor_year + 4, cvc="123")


def _at(org: Organization, days_ago: int, clock: time) -> datetime:
    """A moment `days_ago` days before the organization was made, at `clock` (people pay
    in the working day, not at whatever time the demo first ran)."""
    day = org.created_at - timedelta(days=days_ago)
    return day.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0)


def _saved_card(org: Organization, anchor_year: int) -> PaymentMethod:
    method = PaymentMethod.objects.filter(organization=org, provider="sandbox").first()
    if method is not None:
        return method
    first_payment = _at(org, PAYMENTS[0][0], PAYMENTS[0][2])
    with audit_dated(first_payment - CARD_SAVED_BEFORE_FIRST):
        return payment_method_save(org=org, card=_card("4242424242424242", anchor_year))


DemoEvent = tuple[datetime, Callable[[], object]]


def demo_owner(org: Organization) -> User | None:
    """The organization's first owner: who pays, turns on auto-recharge and issues keys."""
    owner = (
        Membership.objects.filter(organization=org, role=Role.OWNER)
        .order_by("created_at", "pk")
        .select_related("user")
        .first()
    )
    return owner.user if owner else None


def billing_demo_events(org: Organization) -> list[DemoEvent]:
    """The demo's payments as (time, action) in time order, for a caller that interleaves
    them with usage so every ledger entry is posted in the order of its time (and each
    "balance after" follows from the one before)."""
    anchor = org.created_at
    method = _saved_card(org, anchor.year)
    owner = demo_owner(org)

    def purchase(n: int, dollars: int, at: datetime) -> Callable[[], object]:
        def pay() -> object:
            with audit_dated(at):
                return credits_purchase(
                    org=org,
                    amount_minor=dollars * 100,
                    method=method,
                    idempotency_key=f"demo-payment-{n}",
                    source=PaymentSource.MANUAL,
                    actor=owner,
                    at=at,
                )

        return pay

    def declined(dollars: int, at: datetime) -> Callable[[], object]:
        def attempt() -> object:
            with audit_dated(at):
                payment = payment_prepare(
                    org=org,
                    amount_minor=dollars * 100,
                    idempotency_key="demo-payment-declined",
                    card=_card("4000000000000002", anchor.year),
                    actor=owner,
                    at=at,
                )
                return payment_confirm(org=org, payment_id=payment.pk, at=at)

        return attempt

    events: list[DemoEvent] = []
    for n, (days_ago, dollars, clock) in enumerate(PAYMENTS, start=1):
        at = _at(org, days_ago, clock)
        events.append((at, purchase(n, dollars, at)))
    at = _at(org, *DECLINED_ATTEMPT)
    events.append((at, declined(75, at)))
    events.sort(key=lambda event: event[0])
    return events


def billing_demo_auto_recharge(org: Organization) -> None:
    """The demo's auto-recharge rule (below 50 credits, buy $100 with the saved card)."""
    method = _saved_card(org, org.created_at.year)
    if not CreditAccount.objects.filter(organization=org, auto_recharge_below__isnull=False):
        last_payment = _at(org, PAYMENTS[-1][0], PAYMENTS[-1][2])
        with audit_dated(last_payment + AUTO_RECHARGE_AFTER_LAST):
            auto_recharge_set(
                org=org,
                below=Decimal("50"),
                amount_minor=10000,
                method=method,
                actor=demo_owner(org),
            )


def billing_demo_statements(org: Organization, now: datetime) -> list[Statement]:
    """Issue the statement of every closed month that has none, each as the beat would
    have at its month's close (and emailed then: the demo does not email them now)."""
    issued = []
    tz = org_zone(org)
    for month in statement_months_due(org=org, now=now):
        _, end = month_bounds(month=month, tz=tz)
        at = min(end + STATEMENT_ISSUED_AFTER_CLOSE, now)
        statement = statement_issue(org=org, month=month, now=at)
        Statement.objects.filter(pk=statement.pk, notified_at__isnull=True).update(notified_at=at)
        issued.append(statement)
    return issued
