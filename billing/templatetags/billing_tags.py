"""Template helpers: `credits` (the one rule for showing credits) and links from ledger
entries to what they were for."""

from decimal import Decimal

from django import template
from django.urls import reverse
from django.utils.html import format_html

from billing.money import credits_display, credits_exact

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
def credits(value: Decimal | float | int | None, arg: str = "") -> str:
    """The one way the console shows credits (chip, ledger, panel, alerts, payments).

    Two decimals from a cent up, two significant digits below a cent, right-aligned by the
    tables' .num cells; when the display rounds, the exact amount is the title (hover).
    `|credits:"signed"` marks a positive amount with "+" (ledger credits).
    """
    if value is None or value == "":
        return "—"
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    shown = credits_display(value, signed=arg == "signed")
    exact = credits_exact(value)
    if shown.lstrip("+") == exact:
        return shown
    return format_html('<span class="credits" title="{} credits">{}</span>', exact, shown)
