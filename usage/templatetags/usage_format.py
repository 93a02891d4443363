"""Numbers and times for people on the usage pages: grouped digits, hours and minutes,
and short relative times ("14m ago")."""

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def hours_minutes(value: timedelta | int | float | Decimal | None) -> str:
    """A duration (timedelta or seconds) as "1,234 h 05 min", "25 min" or "0 min"."""
    if value is None:
        return "—"
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


@register.filter
def grouped(value: int | float | Decimal | None, places: int = 0) -> str:
    """A number with thousands separators and `places` decimals."""
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        # People expect 1.25 to show as 1.3, not banker's 1.2.
        value = value.quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)
    return f"{value:,.{int(places)}f}"


@register.filter
def percent(value: float | None) -> str:
    """A share as "12.3%", "< 0.1%" for a sliver, "—" when there is none to show."""
    if value is None:
        return "—"
    if 0 < value < 0.1:
        return "< 0.1%"
    return f"{value:,.1f}%"


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
