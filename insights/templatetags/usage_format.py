"""Numbers and times for people on the usage pages (the shared formatters of
core/numbers.py), compact counts and short relative times ("14m ago")."""

from datetime import datetime, timedelta
from decimal import Decimal

from django import template
from django.utils import timezone

from core import numbers

register = template.Library()


@register.filter
def hours_minutes(value: timedelta | int | float | Decimal | None) -> str:
    """Worker runtime (timedelta or seconds) as "1,234 h 05 min", "25 min" or "0 min"."""
    return numbers.hours_minutes(value)


@register.filter
def grouped(value: int | float | Decimal | None, places: int = 0) -> str:
    """A number with thousands separators and `places` decimals (half up)."""
    return numbers.decimal_grouped(value, int(places))


@register.filter
def percent(value: float | None) -> str:
    """A share as "12.3%", "< 0.1%" for a sliver, "—" when there is none to show."""
    return numbers.percent_display(value)


@register.filter
def compact(value: int | None) -> str:
    """A large count in short form: 950, 12.3K, 4.5M, 1.2B."""
    if value is None:
        return "—"
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if abs(value) >= size:
            return f"{value / size:,.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:,}"


@register.filter
def ago(value: datetime | None) -> str:
    """How long ago, briefly: "moments ago", "14m ago", "2h ago", "3d ago"."""
    if value is None:
        return "never"
    seconds = (timezone.now() - value).total_seconds()
    if seconds < 0:
        return "just now"
    if seconds < 60:
        return "moments ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86_400:
        return f"{int(seconds // 3600)}h ago"
    return f"{int(seconds // 86_400):,}d ago"
