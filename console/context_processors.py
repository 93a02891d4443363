"""The session chip and navigation shown on every page after login."""

from django.http import HttpRequest

from accounts.selectors import memberships_of


def session_chip(request: HttpRequest) -> dict:
    organization = getattr(request, "organization", None)
    user = getattr(request, "user", None)
    if organization is None or user is None or not user.is_authenticated:
        return {}
    from billing.selectors import account_summary

    return {
        "current_org": organization,
        "current_membership": request.membership,
        "chip": account_summary(org=organization),
        # Evaluated lazily by the template: only pages that draw the switcher pay for it.
        "org_memberships": memberships_of(user=user),
    }
