"""Reads for billing."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Sum

from accounts.models import Organization
from billing.models import CreditAccount, LedgerEntry, Payment, PaymentStatus


@dataclass(frozen=True)
class AccountSummary:
    """What the session chip and the balance cards show."""

    credit_balance: Decimal
    last_payment_at: datetime | None


def credit_balance(*, org: Organization) -> Decimal:
    """The cached balance (equal to the ledger's sum; zero before the first entry)."""
    balance = (
        CreditAccount.objects.filter(organization=org).values_list("balance", flat=True).first()
    )
    return balance if balance is not None else Decimal("0")


def ledger_sum(*, org: Organization) -> Decimal:
    """The balance recomputed from the ledger itself (for reconciliation and tests)."""
    total = LedgerEntry.objects.filter(organization=org).aggregate(total=Sum("amount"))["total"]
    return total if total is not None else Decimal("0")


def last_payment_at(*, org: Organization) -> datetime | None:
    """When the organization's most recent successful payment completed."""
    return (
        Payment.objects.filter(organization=org, status=PaymentStatus.SUCCEEDED)
        .order_by("-completed_at")
        .values_list("completed_at", flat=True)
        .first()
    )


def account_summary(*, org: Organization) -> AccountSummary:
    """The organization's balance and last payment date."""
    return AccountSummary(
        credit_balance=credit_balance(org=org), last_payment_at=last_payment_at(org=org)
    )
