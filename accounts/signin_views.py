"""Sign-in pages: the password step (then allauth's second factor), Settings → Security
(second factors, the organization's requirement, sessions). A new password ends the
other sessions wherever it is set: accounts/receivers.py."""

from allauth.account.internal.flows.login import perform_password_login
from allauth.account.models import Login
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.http import SESSION_ORG_KEY, OrgRequest, org_view
from accounts.models import Role
from accounts.selectors import memberships_of
from accounts.signin import (
    organization_two_factor_set,
    user_authenticators,
    user_has_two_factor,
    user_session_end,
    user_sessions_all,
    user_sessions_end,
    user_sessions_of,
)


class ConsoleLoginView(LoginView):
    """The password step, behind django-axes' lockout. A right password does not make a
    session by itself: allauth's login stages ask for the second factor (when the person
    has one) and only then log in, rotating the session key."""

    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        login = Login(user=user, redirect_url=self.get_success_url(), email=user.email)
        # Recorded as a password sign-in: allauth then asks no password again for a few
        # minutes when the person sets up or removes a factor.
        return perform_password_login(self.request, {"email": user.email}, login)


@login_required
def two_factor_home(request: HttpRequest) -> HttpResponse:
    """allauth's two-factor index: the person's Security page in their current organization."""
    slug = request.session.get(SESSION_ORG_KEY)
    if slug is None:
        membership = memberships_of(user=request.user).first()
        slug = membership.organization.slug if membership is not None else None
    if slug is None:
        return redirect("home")
    return redirect("accounts:security", org_slug=slug)


@org_view(two_factor_setup=True)
def security(request: OrgRequest) -> HttpResponse:
    """Settings → Security: second factors, the organization's requirement, sessions."""
    authenticators = user_authenticators(user=request.user)
    recovery = authenticators["recovery_codes"]
    response = render(
        request,
        "accounts/security.html",
        {
            "nav": "settings",
            "has_two_factor": user_has_two_factor(user=request.user),
            "totp": authenticators["totp"][0] if authenticators["totp"] else None,
            "passkeys": authenticators["webauthn"],
            "recovery_codes": recovery[0].wrap() if recovery else None,
            "sessions": user_sessions_of(user=request.user),
            "current_session_key": request.session.session_key,
            "is_owner": request.membership.role == Role.OWNER,
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@org_view(two_factor_setup=True)
@require_POST
def two_factor_policy(request: OrgRequest) -> HttpResponse:
    """An owner requires (or stops requiring) a second factor of every member."""
    if request.membership.role != Role.OWNER:
        messages.error(request, "Only the organization's owners can change this.")
        return redirect("accounts:security", org_slug=request.organization.slug)
    required = request.POST.get("required") == "on"
    if required and not user_has_two_factor(user=request.user):
        messages.error(request, "Set up your own second factor before requiring one of everyone.")
        return redirect("accounts:security", org_slug=request.organization.slug)
    organization_two_factor_set(org=request.organization, required=required, actor=request.user)
    messages.success(
        request,
        "Every member now needs a second factor."
        if required
        else "A second factor is no longer required.",
    )
    return redirect("accounts:security", org_slug=request.organization.slug)


@org_view(two_factor_setup=True)
@require_POST
def session_end(request: OrgRequest, session_id: int) -> HttpResponse:
    """End one of your sessions: that browser is signed out at its next request."""
    session = get_object_or_404(user_sessions_all(user=request.user), pk=session_id)
    user_session_end(session=session)
    messages.success(request, "Session ended.")
    return redirect("accounts:security", org_slug=request.organization.slug)


@org_view(two_factor_setup=True)
@require_POST
def sessions_end_others(request: OrgRequest) -> HttpResponse:
    """End every session of yours but this one."""
    ended = user_sessions_end(user=request.user, keep_session_key=request.session.session_key)
    messages.success(request, f"Ended {ended} other session{'s' if ended != 1 else ''}.")
    return redirect("accounts:security", org_slug=request.organization.slug)
