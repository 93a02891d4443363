"""The one place credits are rounded, and conversions between money and credits."""

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, localcontext

from django.conf import settings

from core.numbers import decimal_plain

CREDIT_QUANTUM = Decimal("1e-10")
CENT = Decimal("0.01")
# Amounts below a cent (a query's token price) show this many significant digits.
SUB_CENT_DIGITS = 2


def credits_round(value: Decimal) -> Decimal:
    """Round a credit amount to the ledger's scale (banker's rounding)."""
    return value.quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_EVEN)


def credits_per_dollar() -> Decimal:
    """One credit is one US dollar unless CREDITS_PER_USD says otherwise."""
    return Decimal(str(settings.CREDITS_PER_USD))


def credits_for_minor_units(amount_minor: int) -> Decimal:
    """Credits bought by a payment of amount_minor cents."""
    return credits_round(dollars_for_minor_units(amount_minor) * credits_per_dollar())


# Payments: integer minor units (cents) of US dollars --------------------------------------

CENTS_PER_DOLLAR = 100


def dollars_for_minor_units(amount_minor: int) -> Decimal:
    """The exact dollar amount of amount_minor cents, of any size (divided with room for
    every digit: the default context's 28 would round a huge amount)."""
    with localcontext() as context:
        context.prec = max(28, len(str(abs(int(amount_minor)))) + 2)
        return Decimal(amount_minor) / CENTS_PER_DOLLAR


def minor_units_for_dollars(dollars: Decimal) -> int:
    """Cents for a dollar amount a person typed, to the nearest cent (half up, as people
    round)."""
    return int((Decimal(dollars) * CENTS_PER_DOLLAR).to_integral_value(ROUND_HALF_UP))


def minor_units_for_credits(credits: Decimal) -> int:
    """The cents that buy exactly `credits`; ValueError when that is not a whole number
    of cents (a purchase is never rounded)."""
    cents = Decimal(credits) / credits_per_dollar() * CENTS_PER_DOLLAR
    if cents != cents.to_integral_value(ROUND_HALF_EVEN):
        raise ValueError("must buy a whole number of cents")
    return int(cents)


def dollars_display(amount_minor: int, *, places: int = 2) -> str:
    """A payment amount for people: "$1,234.56", a refund "-$25.00" (places=0: "$1,235",
    half up). Integer arithmetic, so an amount of any size shows exactly."""
    minor = int(amount_minor)
    sign = "-" if minor < 0 else ""
    dollars, cents = divmod(abs(minor), CENTS_PER_DOLLAR)
    if places == 0:
        return f"{sign}${dollars + (cents >= CENTS_PER_DOLLAR // 2):,}"
    return f"{sign}${dollars:,}.{cents:02d}"


def credits_display(value: Decimal, *, signed: bool = False) -> str:
    """A credit amount for people: grouped with two decimals from a cent up, and two
    significant digits below a cent (0.000048), so a fraction of a cent never reads 0.00.

    Display only (half up, as people round); the ledger keeps the exact amount, shown by
    credits_exact. `signed` puts "+" before a positive amount (ledger credits).
    """
    value = Decimal(value)
    shown = value
    if value and abs(value) < CENT:
        digits = Decimal(1).scaleb(value.adjusted() - (SUB_CENT_DIGITS - 1))
        shown = value.quantize(digits, rounding=ROUND_HALF_UP)
    if value.is_zero() or abs(shown) >= CENT:
        # A sub-cent amount that rounds up to a cent reads as one (0.00999 -> 0.01).
        text = f"{value.quantize(CENT, rounding=ROUND_HALF_UP):,.2f}"
    else:
        text = format(shown, "f")
    if text.startswith("-") and not text.strip("-0.,"):
        text = text[1:]  # no "-0.00"
    return f"+{text}" if signed and value > 0 and text.strip("0.,") else text


def credits_exact(value: Decimal) -> str:
    """The exact amount, grouped, without trailing zeros past the cents (1,234.5 -> 1,234.50)."""
    value = Decimal(value).normalize()
    if value.as_tuple().exponent > -2:  # type: ignore[operator]
        value = value.quantize(CENT)
    return f"{value:,f}" if not value.is_zero() else "0.00"


def credits_text(value: Decimal, *, signed: bool = False, exact: bool = False) -> str:
    """Credits in a sentence, with the unit: "42.50 credits", "0.00099 credits" (emails,
    alert messages); exact=True for a record that must not round (the audit log:
    "0.123456 credits"). `signed` puts "+" before a positive amount."""
    if exact:
        text = credits_exact(value)
        text = f"+{text}" if signed and value > 0 else text
    else:
        text = credits_display(value, signed=signed)
    return f"{text} credits"


# A table's credit column shows every row at one precision: enough decimals for its
# smallest amount to keep two significant digits, two at least, COLUMN_MAX_PLACES at most.
COLUMN_MAX_PLACES = 6


def credits_places(values) -> int:
    """The decimals a column of these credit amounts is shown at (see COLUMN_MAX_PLACES)."""
    places = 2
    for value in values:
        if value is None or value == "":
            continue
        value = abs(Decimal(value))
        if value and value < CENT:
            places = max(places, min(COLUMN_MAX_PLACES, SUB_CENT_DIGITS - 1 - value.adjusted()))
    return places


def credits_fixed(value: Decimal, places: int = 2) -> str:
    """Credits grouped at a column's precision, half up; a non-zero amount too small for
    it reads "< 0.000001", never 0 (credits_places)."""
    value = Decimal(value)
    quantum = Decimal(1).scaleb(-int(places))
    shown = value.quantize(quantum, rounding=ROUND_HALF_UP)
    if value and shown.is_zero():
        return f"< {quantum:f}" if value > 0 else f"> -{quantum:f}"
    text = f"{shown:,.{int(places)}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def credits_csv(value: Decimal) -> str:
    """Credits in a file: exact, at least two decimals (100.00, 0.0000025): the one rule
    for every credit column of every CSV, per-token prices included."""
    return decimal_plain(value)


def dollars_csv(amount_minor: int) -> str:
    """A payment amount in a file: dollars with exactly two decimals (100.00, -25.00)."""
    return decimal_plain(dollars_for_minor_units(amount_minor))


# On the wire (the API, CSV): a decimal string, never a float.
DecimalStr = str  # a decimal number as a string, e.g. "0.0000025"


DECIMAL = {"format": "decimal", "examples": ["12.5"]}


def decimal_str(value: Decimal) -> str:
    """A decimal as a plain string without exponent or trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in {"-0", ""} else text
