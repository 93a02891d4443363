"""The console's figures in templates, one filter per kind (docs/numbers.md): credits,
dollars, tokens, counts with their noun, durations, percentages, and form values."""

from decimal import Decimal

from django import template
from django.utils.html import format_html

from billing.money import (
    credits_display,
    credits_exact,
    credits_fixed,
    credits_places,
    dollars_display,
    minor_units_for_dollars,
)
from core import numbers

register = template.Library()


def _decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _with_exact(shown: str, value: Decimal, unit: str = "") -> str:
    """The shown figure, with the exact amount as its title (hover) when it rounds."""
    exact = credits_exact(value)
    try:
        rounds = Decimal(shown.replace(",", "").lstrip("+")) != value
    except ArithmeticError:  # "< 0.000001": it rounds
        rounds = True
    if not rounds:
        return shown + unit
    return format_html('<span class="credits" title="{} credits">{}</span>{}', exact, shown, unit)


@register.filter
def credits(value: Decimal | float | int | None, arg: str = "") -> str:
    """The one way the console shows credits (chip, ledger, panel, alerts, payments).

    Two decimals from a cent up, two significant digits below a cent, right-aligned by the
    tables' .num cells; when the display rounds, the exact amount is the title (hover).
    `|credits:"signed"` marks a positive amount with "+" (ledger credits).
    """
    if value is None or value == "":
        return numbers.NONE
    value = _decimal(value)
    return _with_exact(credits_display(value, signed=arg == "signed"), value)


@register.filter
def credits_unit(value: Decimal | float | int | None) -> str:
    """Credits standing alone, with their unit: "0.00099 credits"."""
    if value is None or value == "":
        return numbers.NONE
    value = _decimal(value)
    return _with_exact(credits_display(value), value, " credits")


@register.filter
def credits_at(value: Decimal | float | int | None, places: int = 2) -> str:
    """Credits at a table's one precision for its credit columns (see column_places)."""
    if value is None or value == "":
        return numbers.NONE
    value = _decimal(value)
    return _with_exact(credits_fixed(value, int(places)), value)


@register.filter
def credits_signed_at(value: Decimal | float | int | None, places: int = 2) -> str:
    """As credits_at, a positive amount marked "+" (ledger credits)."""
    shown = credits_at(value, places)
    if value is None or value == "" or _decimal(value) <= 0 or shown.startswith("<"):
        return shown
    return format_html("+{}", shown) if "<span" in shown else "+" + shown


def _cell(row, key: str):
    if isinstance(row, dict):
        return row.get(key)
    if isinstance(row, list | tuple):
        return row[int(key)]
    return getattr(row, key, None)


@register.simple_tag
def column_places(rows, keys: str) -> int:
    """The decimals a table's credit columns are shown at, one for all of them: enough
    for the smallest amount in any (`{% column_places rows "amount,balance_after" as
    places %}` then `|credits_at:places`). A key is an attribute, a dict key, or an
    index for rows that are tuples."""
    names = [k.strip() for k in keys.split(",")]
    return credits_places(_cell(row, name) for row in rows or () for name in names)


@register.filter
def dollars(value: Decimal | int | None) -> str:
    """A dollar amount (payments, recharges): "$1,234.56", a refund "-$25.00"."""
    if value is None or value == "":
        return numbers.NONE
    return dollars_display(minor_units_for_dollars(_decimal(value)))


@register.filter
def count(value: int | None) -> str:
    """A count grouped: "21,152"."""
    return numbers.count_display(value)


@register.filter
def count_of(value: int | None, nouns: str) -> str:
    """A count with its noun: `|count_of:"record"` -> "1 record", "2 records";
    `|count_of:"person,people"` for an irregular plural."""
    singular, _, plural = nouns.partition(",")
    return numbers.count_of(value, singular, plural)


@register.filter
def tokens(value: int | None) -> str:
    """Tokens with their unit: "131,923 tokens"."""
    return numbers.tokens_display(value)


@register.filter
def duration(value) -> str:
    """An elapsed time in its largest unit: "3 days", "1 hour 20 minutes"."""
    return numbers.duration_display(value)


@register.filter
def percent(value, places: int = 1) -> str:
    """A share: "12.3%", a sliver "< 0.1%"."""
    return numbers.percent_display(value, int(places))


@register.filter
def as_typed(value) -> str:
    """A decimal as a person types it (form values): 50.0000000000 -> "50"."""
    return numbers.decimal_input(value)


@register.filter
def grouped(value, places: int = 0) -> str:
    """A measured quantity (core-hours) grouped, to `places` decimals: "25,696.7"."""
    return numbers.decimal_grouped(value, int(places))
