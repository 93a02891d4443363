"""Template helpers for credits and for linking ledger entries to what they were for."""

from decimal import Decimal

from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()

# A ledger reference is "<what>:<id>". Where the usage pages offer a page for that
# thing, the entry links to it; candidates are tried in order, so the link appears as
# soon as the usage app names a route, and until then the reference shows as text.
REFERENCE_ROUTES: dict[str, tuple[str, ...]] = {
    "payment": ("billing:payment",),
    "job": ("usage:job", "usage:job_detail"),
    "usage-batch": ("usage:batch", "usage:batch_detail"),
    "usage-day": ("usage:day", "usage:charges_day"),
    "record": ("usage:record", "usage:record_detail"),
}


@register.simple_tag
def reference_url(reference: str, org_slug: str) -> str:
    """The page of the thing a ledger entry refers to, or "" when there is none."""
    prefix, sep, ident = (reference or "").partition(":")
    if not sep or not ident:
        return ""
    for name in REFERENCE_ROUTES.get(prefix, ()):
        try:
            return reverse(name, args=[org_slug, ident])
        except NoReverseMatch:
            continue
    return ""


@register.filter
def credits(value: Decimal | None, places: int = 2) -> str:
    """A credit amount for people: grouped, `places` decimals; tiny amounts keep their digits."""
    if value is None:
        return "—"
    if value and abs(value) < Decimal("0.01"):
        return f"{value.normalize():f}"
    return f"{value:,.{int(places)}f}"


@register.filter
def signed_credits(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"+{credits(value)}" if value > 0 else credits(value)
