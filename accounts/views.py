from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.forms import APIKeyCreateForm
from accounts.models import APIKeyKind
from accounts.selectors import apikeys_of, organization_members
from accounts.services import apikey_create, apikey_revoke
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


def _api_keys_page(request: OrgRequest, *, form, issued=None, status: int = 200) -> HttpResponse:
    response = render(
        request,
        "accounts/api_keys.html",
        {
            "nav": "settings",
            "keys": apikeys_of(org=request.organization),
            "form": form,
            "issued": issued,
        },
        status=status,
    )
    # The page may carry a secret shown once: never keep it in a cache or the history.
    response["Cache-Control"] = "no-store"
    return response


@org_view()
def api_keys(request: OrgRequest) -> HttpResponse:
    """API keys: every member sees them (never their secrets); owners and admins manage."""
    return _api_keys_page(request, form=APIKeyCreateForm())


@org_view(manage=True)
@require_POST
def api_key_create(request: OrgRequest) -> HttpResponse:
    """Issue a key and show its secret this once (it is not stored, only its hash)."""
    form = APIKeyCreateForm(request.POST)
    if not form.is_valid():
        return _api_keys_page(request, form=form, status=400)
    personal = form.cleaned_data["kind"] == APIKeyKind.PERSONAL
    issued = apikey_create(
        org=request.organization,
        name=form.cleaned_data["name"],
        kind=form.cleaned_data["kind"],
        user=request.user if personal else None,
        created_by=request.user,
    )
    return _api_keys_page(request, form=APIKeyCreateForm(), issued=issued)


@org_view(manage=True)
@require_POST
def api_key_revoke(request: OrgRequest, key_id: int) -> HttpResponse:
    """Revoke one of the organization's keys; programs using it get 401 from now on."""
    key = get_object_or_404(apikeys_of(org=request.organization), pk=key_id)
    apikey_revoke(key=key)
    messages.success(request, f"Revoked {key.name} ({key.display}).")
    return redirect("accounts:api_keys", org_slug=request.organization.slug)
