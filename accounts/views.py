from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import PasswordResetView
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts.confirm import Confirmation, confirm_page, shown_once_keep, shown_once_pop
from accounts.forms import APIKeyCreateForm
from accounts.http import OrgRequest, org_view
from accounts.mail import LinkSafePasswordResetForm
from accounts.models import KEY_ROLES, APIKeyKind
from accounts.projects import (
    ProjectError,
    apikeys_visible,
    project_keys_manageable,
    projects_key_manageable,
)
from accounts.selectors import organization_members, session_tokens_of
from accounts.services import (
    SessionTokenUnusable,
    apikey_create,
    apikey_revoke,
    session_token_issue,
    session_token_renew,
    session_token_revoke,
    user_color_scheme_set,
)
from core.client_ip import client_ip
from core.throttle import throttle_hit


@org_view()
def organization_settings(request: OrgRequest) -> HttpResponse:
    """The organization: name, tier, allocation and its members with their roles."""
    members = organization_members(org=request.organization)
    return render(
        request,
        "accounts/organization_settings.html",
        {"nav": "settings", "members": members},
    )


def _api_keys_page(request: OrgRequest, *, form, status: int = 200) -> HttpResponse:
    issued = shown_once_pop(request, "api_key")
    manageable = projects_key_manageable(membership=request.membership)
    response = render(
        request,
        "accounts/api_keys.html",
        {
            "nav": "settings",
            "keys": apikeys_visible(membership=request.membership),
            "form": form,
            "issued": issued,
            "manageable_project_ids": {p.pk for p in manageable},
        },
        status=status,
    )
    # The page may carry a secret shown once: never keep it in a cache or the history.
    response["Cache-Control"] = "no-store"
    return response


def _key_form(request: OrgRequest, data=None) -> APIKeyCreateForm:
    return APIKeyCreateForm(data, projects=projects_key_manageable(membership=request.membership))


@org_view(roles=KEY_ROLES)
def api_keys(request: OrgRequest) -> HttpResponse:
    """API keys of the projects you see (never their secrets); owners, admins and project
    admins manage them."""
    return _api_keys_page(request, form=_key_form(request))


@org_view(roles=KEY_ROLES)
@require_POST
def api_key_create(request: OrgRequest) -> HttpResponse:
    """Issue a key in a project; the page it redirects to shows its secret this once
    (only its hash is stored), so a reload neither issues another key nor shows it again."""
    form = _key_form(request, request.POST)
    if not form.fields["project"].queryset.exists():  # type: ignore[attr-defined]
        raise PermissionDenied("Only owners, admins and project admins create keys")
    if not form.is_valid():
        return _api_keys_page(request, form=form, status=400)
    personal = form.cleaned_data["kind"] == APIKeyKind.PERSONAL
    try:
        issued = apikey_create(
            org=request.organization,
            name=form.cleaned_data["name"],
            kind=form.cleaned_data["kind"],
            user=request.user if personal else None,
            created_by=request.user,
            project=form.cleaned_data["project"],
        )
    except ProjectError as exc:
        form.add_error(exc.field or None, str(exc))
        return _api_keys_page(request, form=form, status=400)
    messages.success(
        request,
        f"Created the key {issued.key.name} ({issued.key.display}) in {issued.key.project.name}.",
    )
    return shown_once_keep(
        request,
        redirect("accounts:api_keys", org_slug=request.organization.slug),
        "api_key",
        name=issued.key.name,
        secret=issued.secret,
    )


@org_view(roles=KEY_ROLES)
@require_http_methods(["GET", "POST"])
def api_key_revoke(request: OrgRequest, key_id: int) -> HttpResponse:
    """Revoke one of the keys you manage; programs using it get 401 from now on."""
    key = get_object_or_404(apikeys_visible(membership=request.membership), pk=key_id)
    if not project_keys_manageable(membership=request.membership, project=key.project):
        raise PermissionDenied("Only owners, admins and the project's admins revoke its keys")
    if request.method == "GET":
        return confirm_page(
            request,
            Confirmation(
                title=f"Revoke the API key \u201c{key.name}\u201d?",
                consequence=f"Programs sending {key.display} get 401 from now on. "
                "A revoked key cannot be turned back on.",
                action="Revoke key",
                back=reverse("accounts:api_keys", args=[request.organization.slug]),
            ),
        )
    apikey_revoke(key=key, actor=request.user)
    messages.success(request, f"Revoked {key.name} ({key.display}).")
    return redirect("accounts:api_keys", org_slug=request.organization.slug)


# Account session tokens: each person manages their own --------------------------------


def _session_tokens_page(request: OrgRequest, *, status: int = 200) -> HttpResponse:
    tokens = session_tokens_of(user=request.user, org=request.organization)
    kept = shown_once_pop(request, "session_token")
    issued = None
    if kept:
        token = next((t for t in tokens if t.pk == kept["id"]), None)
        issued = {"token": token, "secret": kept["secret"]} if token else None
    response = render(
        request,
        "accounts/session_tokens.html",
        {
            "nav": "settings",
            "tokens": tokens,
            "issued": issued,
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"  # may carry a secret shown once
    return response


@org_view()
def session_tokens(request: OrgRequest) -> HttpResponse:
    """Your account session tokens for this organization (for the API and the SDK)."""
    return _session_tokens_page(request)


@org_view()
@require_POST
def session_token_create(request: OrgRequest) -> HttpResponse:
    """Issue a 30-day token for yourself; the page it redirects to shows its secret once."""
    name = request.POST.get("name", "").strip()[:100]
    issued = session_token_issue(user=request.user, org=request.organization, name=name)
    messages.success(request, f"Issued the session token {issued.token.display}.")
    return shown_once_keep(
        request,
        redirect("accounts:session_tokens", org_slug=request.organization.slug),
        "session_token",
        id=issued.token.pk,
        secret=issued.secret,
    )


@org_view()
@require_POST
def session_token_renew_view(request: OrgRequest, token_id: int) -> HttpResponse:
    """Extend one of your live tokens to 30 days from now."""
    token = get_object_or_404(
        session_tokens_of(user=request.user, org=request.organization), pk=token_id
    )
    try:
        token = session_token_renew(token=token)
    except SessionTokenUnusable as exc:
        messages.error(request, f"{token.display}: {exc}.")
    else:
        messages.success(
            request, f"Renewed {token.display} until {token.expires_at:%d %b %Y %H:%M} UTC."
        )
    return redirect("accounts:session_tokens", org_slug=request.organization.slug)


@org_view()
@require_http_methods(["GET", "POST"])
def session_token_revoke_view(request: OrgRequest, token_id: int) -> HttpResponse:
    """Revoke one of your tokens; programs using it get 401 from now on."""
    token = get_object_or_404(
        session_tokens_of(user=request.user, org=request.organization), pk=token_id
    )
    if request.method == "GET":
        return confirm_page(
            request,
            Confirmation(
                title=f"Revoke the session token {token.name or token.display}?",
                consequence=f"Programs using {token.display} get 401 from now on.",
                action="Revoke token",
                back=reverse("accounts:session_tokens", args=[request.organization.slug]),
            ),
        )
    session_token_revoke(token=token)
    messages.success(request, f"Revoked {token.display}.")
    return redirect("accounts:session_tokens", org_slug=request.organization.slug)


# Password reset, rate limited --------------------------------------------------------


class ThrottledPasswordResetView(PasswordResetView):
    """Django's password reset, limited per client address (429 past the limit) and per
    email address (past it the page answers as usual but sends nothing, so it neither
    floods a mailbox nor tells whether the address has an account)."""

    form_class = LinkSafePasswordResetForm

    def post(self, request, *args, **kwargs):
        address = client_ip(request) or "unknown"
        if not throttle_hit(
            scope="password-reset-ip",
            key=address,
            limit=settings.PASSWORD_RESET_LIMIT_PER_IP,
            window_seconds=settings.PASSWORD_RESET_WINDOW_SECONDS,
        ):
            return render(request, "registration/password_reset_throttled.html", status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        email = form.cleaned_data["email"].strip().lower()
        if throttle_hit(
            scope="password-reset-email",
            key=email,
            limit=settings.PASSWORD_RESET_LIMIT_PER_EMAIL,
            window_seconds=settings.PASSWORD_RESET_WINDOW_SECONDS,
        ):
            return super().form_valid(form)
        return HttpResponseRedirect(self.get_success_url())


@login_required
@require_POST
def color_scheme_set(request: HttpRequest) -> HttpResponse:
    """The session chip's Appearance buttons: remember the choice, go back to the page."""
    try:
        user_color_scheme_set(user=request.user, color_scheme=request.POST.get("color_scheme", ""))
    except ValueError:
        return HttpResponseBadRequest("Unknown colour scheme")
    back = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return redirect(back if safe else "home")
