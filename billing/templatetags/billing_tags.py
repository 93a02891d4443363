"""Template helpers: `credits` (the one rule for showing credits, from the numbers
library) and links from ledger entries to what they were for."""

from django import template
from django.urls import reverse

from billing.templatetags.numbers import credits

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


# The one rule for showing credits, also here where the ledger's templates load it.
register.filter("credits", credits)
