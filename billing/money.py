"""The one place credits are rounded, and conversions between money and credits."""

from decimal import ROUND_HALF_EVEN, Decimal

from django.conf import settings

CREDIT_QUANTUM = Decimal("1e-10")


def credits_round(value: Decimal) -> Decimal:
    """Round a credit amount to the ledger's scale (banker's rounding)."""
    return value.quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_EVEN)


def credits_per_dollar() -> Decimal:
    """One credit is one US dollar unless CREDITS_PER_USD says otherwise."""
    return Decimal(str(getattr(settings, "CREDITS_PER_USD", "1")))


def credits_for_minor_units(amount_minor: int) -> Decimal:
    """Credits bought by a payment of amount_minor cents."""
    return credits_round(Decimal(amount_minor) / 100 * credits_per_dollar())
