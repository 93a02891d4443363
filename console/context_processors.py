"""The session chip and navigation shown on every page after login."""

from django.http import HttpRequest

from accounts.models import ColorScheme
from accounts.selectors import memberships_of
from billing.selectors import account_summary
from insights.selectors.chip import core_hour_balance


def session_chip(request: HttpRequest) -> dict:
    organization = getattr(request, "organization", None)
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # The user's remembered colour scheme ("" follows the device): on every page, admin too.
    scheme = {"color_scheme": user.color_scheme, "color_scheme_choices": ColorScheme.choices}
    if organization is None:
        return scheme
    chip = account_summary(org=organization)
    return {
        **scheme,
        "current_org": organization,
        "current_membership": request.membership,
        "chip": chip,
        # The balance in core-hours at the default worker type's rate, as the reference's chip.
        "chip_core_hours": core_hour_balance(credits=chip.credit_balance),
        # Evaluated lazily by the template: only pages that draw the switcher pay for it.
        "org_memberships": memberships_of(user=user),
    }
