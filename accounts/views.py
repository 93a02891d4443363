from django.http import HttpResponse
from django.shortcuts import render

from accounts.selectors import organization_members
from console.http import OrgRequest, org_view


@org_view()
def organization_settings(request: OrgRequest) -> HttpResponse:
    """The organization: name, tier, allocation and its members with their roles."""
    members = organization_members(org=request.organization)
    return render(
        request,
        "accounts/organization_settings.html",
        {"nav": "settings", "members": members},
    )
