"""How figures read to people, one formatter per kind: counts, tokens, durations,
percentages, and a decimal as a person would type it. Credits and dollars are in
billing/money.py, built on these. docs/numbers.md lists every kind and its rule.

Here, in core, because the audit log, CSV exports and every app use them.
"""

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

NONE = "—"  # a figure that does not exist (no allocation, no heartbeat yet)

# Irregular plurals the console uses; anything else takes an "s".
_PLURALS = {"query": "queries", "entry": "entries", "core-hour": "core-hours"}


def count_display(value: int | Decimal | None) -> str:
    """A whole number with thousands grouped: 21152 -> "21,152"."""
    if value is None:
        return NONE
    return f"{int(value):,}"


def noun(count: int | Decimal, singular: str, plural: str = "") -> str:
    """The noun that goes with count: "record" for exactly one (or minus one), else plural."""
    if abs(count) == 1:
        return singular
    return plural or _PLURALS.get(singular, singular + "s")


def count_of(count: int | None, singular: str, plural: str = "") -> str:
    """A count with its noun: "1 record", "2 records", "21,152 records", "0 records"."""
    if count is None:
        return NONE
    return f"{count_display(count)} {noun(count, singular, plural)}"


def tokens_display(value: int | None) -> str:
    """Tokens with their unit: "1 token", "131,923 tokens"."""
    return count_of(value, "token")


def decimal_grouped(value: Decimal | int | float | None, places: int = 0) -> str:
    """A measured quantity (core-hours, GB) grouped, to `places` decimals, half up as
    people round (1.25 -> 1.3, not banker's 1.2)."""
    if value is None:
        return NONE
    shown = Decimal(str(value)).quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)
    text = f"{shown:,.{int(places)}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def decimal_input(value: Decimal | int | float | str | None) -> str:
    """A decimal as a person would type it into a form: 50.0000000000 -> "50",
    12.5000 -> "12.5", never an exponent (1E+2 -> "100")."""
    if value is None or value == "":
        return ""
    text = format(Decimal(str(value)).normalize(), "f")
    return "0" if text in {"-0", ""} else text


def decimal_plain(value: Decimal | int, *, min_places: int = 2) -> str:
    """A decimal for a file (CSV): exact, never grouped nor an exponent, at least
    `min_places` decimals and no trailing zeros past them (100.0000000000 -> "100.00",
    0.0000025 -> "0.0000025")."""
    value = Decimal(value)
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    if not isinstance(exponent, int):  # NaN or infinity: say it as it is
        return str(value)
    if exponent > -min_places:
        normal = value.quantize(Decimal(1).scaleb(-min_places))
    text = format(normal, "f")
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def percent_display(value: float | Decimal | None, places: int = 1) -> str:
    """A share as "12.3%"; a sliver above zero reads "< 0.1%", never "0.0%"."""
    if value is None:
        return NONE
    smallest = Decimal(1).scaleb(-int(places))
    if 0 < Decimal(str(value)) < smallest:
        return f"< {smallest}%"
    return f"{decimal_grouped(value, places)}%"


_UNITS = (("day", 86_400), ("hour", 3_600), ("minute", 60))


def duration_display(value: timedelta | int | float | Decimal | None) -> str:
    """An elapsed time in the largest unit that fits, whole units, rounded down (a
    controller "offline for 3 days", not 4,333 minutes); under two of that unit the
    next one joins it ("1 day 5 hours", "1 hour 20 minutes") so the first day or hour
    does not hide most of the figure. Under a minute: "less than a minute"."""
    if value is None:
        return NONE
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else float(value))
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    for index, (unit, size) in enumerate(_UNITS):
        whole, rest = divmod(seconds, size)
        if not whole:
            continue
        text = count_of(whole, unit)
        if whole < 2 and index + 1 < len(_UNITS):
            next_unit, next_size = _UNITS[index + 1]
            part = rest // next_size
            if part:
                text += " " + count_of(part, next_unit)
        return sign + text
    return "less than a minute"


def hours_minutes(value: timedelta | int | float | Decimal | None) -> str:
    """Worker runtime, a quantity billed by the hour, in hours and minutes whatever its
    size ("1,234 h 05 min", "25 min"): runtimes are compared and added up in hours, so
    they never switch to days as an elapsed time does."""
    if value is None:
        return NONE
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours:,} h {minutes:02d} min"
    if hours:
        return f"{hours:,} h"
    if seconds and not minutes:
        return "< 1 min"
    return f"{minutes} min"
