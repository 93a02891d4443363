"""Template helpers for credits and for linking ledger entries to what they were for."""

from decimal import Decimal

from django import template
from django.urls import reverse

register = template.Library()

# A ledger reference is "<what>:<id>"; each kind of thing has a page saying what the
# entry paid for or charged ("why did my balance drop").
REFERENCE_ROUTES: dict[str, str] = {
    "payment": "billing:payment",
    "job": "usage:job",
    "usage-batch": "usage:batch",
}


@register.simple_tag
def reference_url(reference: str, org_slug: str) -> str:
    """The page of the thing a ledger entry refers to, or "" when there is none."""
    prefix, sep, ident = (reference or "").partition(":")
    route = REFERENCE_ROUTES.get(prefix)
    if not sep or not ident.isdigit() or route is None:
        return ""
    return reverse(route, args=[org_slug, int(ident)])


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
