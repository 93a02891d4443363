"""Sign-in pages: the password step (then allauth's second factor), Settings → Security
(second factors, the organization's requirement, sessions). A new password ends the
other sessions wherever it is set: accounts/receivers.py."""

from allauth.account.internal.flows.login import perform_password_login
from allauth.account.models import Login
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.http import SESSION_ORG_KEY, SESSION_SSO_ORG_KEY, OrgRequest, org_view
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
from accounts.sso import (
    SSOError,
    sso_discovery,
    sso_domains_parse,
    sso_provider_for_email,
    sso_provider_get,
    sso_provider_of,
    sso_provider_save,
    sso_sign_in,
    sso_start,
)
from core.client_ip import client_ip
from core.throttle import throttle_hit

SSO_SESSION_KEY = "sso_pending"
SSO_STARTS_PER_WINDOW = 20  # per client address, per ten minutes


class ConsoleLoginView(LoginView):
    """The password step, behind django-axes' lockout. A right password does not make a
    session by itself: allauth's login stages ask for the second factor (when the person
    has one) and only then log in, rotating the session key."""

    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        # A domain whose organization requires single sign-on never uses a password here:
        # the person goes to the provider instead (the password is not even checked).
        email = request.POST.get("username", "")
        provider = sso_provider_for_email(email=email)
        if provider is not None and provider.required:
            return _sso_redirect(request, provider=provider, email=email)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        user = form.get_user()
        login = Login(user=user, redirect_url=self.get_success_url(), email=user.email)
        # Recorded as a password sign-in: allauth then asks no password again for a few
        # minutes when the person sets up or removes a factor.
        return perform_password_login(self.request, {"email": user.email}, login)


def _sso_redirect(request: HttpRequest, *, provider, email: str) -> HttpResponse:
    """Send the browser to the provider, remembering state and nonce for the callback."""
    # Each start fetches the provider's discovery document: a loop of posts from one
    # address must not turn the console into a client hammering someone's provider.
    if not throttle_hit(
        scope="sso-start",
        key=client_ip(request) or "",
        limit=SSO_STARTS_PER_WINDOW,
        window_seconds=600,
    ):
        return render(
            request,
            "registration/sso_login.html",
            {"email": email, "throttled": True},
            status=429,
        )
    try:
        start = sso_start(
            provider=provider,
            redirect_uri=request.build_absolute_uri(reverse("sso_callback")),
            email=email,
        )
    except SSOError as exc:
        messages.error(request, str(exc))
        return redirect("sso_login")
    request.session[SSO_SESSION_KEY] = {
        "url": start.url,
        "state": start.state,
        "nonce": start.nonce,
        "code_verifier": start.code_verifier,
        "provider": provider.pk,
    }
    # Not a redirect to the provider: the page holding the form allows forms to go only
    # to this site (CSP form-action, which browsers apply to a form's redirects too).
    return redirect("sso_continue")


def sso_continue(request: HttpRequest) -> HttpResponse:
    """A page of this site that moves the browser on to the provider (and links there)."""
    pending = request.session.get(SSO_SESSION_KEY)
    if not pending or "url" not in pending:
        return redirect("sso_login")
    response = render(request, "registration/sso_continue.html", {"url": pending["url"]})
    response["Cache-Control"] = "no-store"
    return response


def sso_login(request: HttpRequest) -> HttpResponse:
    """ "Sign in with SSO": the email decides which organization's provider to go to."""
    if request.method == "POST":
        email = request.POST.get("email", "").strip()
        provider = sso_provider_for_email(email=email)
        if provider is None:
            messages.error(request, "No organization signs in with single sign-on for that email.")
            return redirect("sso_login")
        return _sso_redirect(request, provider=provider, email=email)
    return render(request, "registration/sso_login.html", {"email": request.GET.get("email", "")})


def sso_callback(request: HttpRequest) -> HttpResponse:
    """The provider sends the browser back here with a code (or its refusal)."""
    pending = request.session.pop(SSO_SESSION_KEY, None)
    state = request.GET.get("state", "")
    if not pending or not state or state != pending.get("state"):
        messages.error(request, "That sign-in had expired or was not started here: try again.")
        return redirect("sso_login")
    if "error" in request.GET or not request.GET.get("code"):
        # The provider's refusal: removed there, no access, or the person cancelled.
        messages.error(request, "The identity provider did not sign you in.")
        return redirect("sso_login")
    provider = sso_provider_get(pk=pending["provider"])
    try:
        if provider is None:
            raise SSOError("Single sign-on is no longer set up for this organization.")
        user = sso_sign_in(
            provider=provider,
            code=request.GET["code"],
            redirect_uri=request.build_absolute_uri(reverse("sso_callback")),
            nonce=pending["nonce"],
            code_verifier=pending["code_verifier"],
        )
    except SSOError as exc:
        messages.error(request, str(exc))
        return redirect("sso_login")
    # The provider did the authenticating (its own second factor included): Django's login
    # makes the session and rotates its key.
    auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_ORG_KEY] = provider.organization.slug
    request.session[SESSION_SSO_ORG_KEY] = provider.organization.slug
    return redirect("home")


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
            "sso": sso_provider_of(org=request.organization),
            "roles": [(v, label) for v, label in Role.choices if v != Role.OWNER],
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


@org_view(roles=frozenset({Role.OWNER}))
@require_POST
def sso_provider_update(request: OrgRequest) -> HttpResponse:
    """An owner registers or changes the organization's identity provider."""
    post = request.POST
    try:
        sso_provider_save(
            org=request.organization,
            actor=request.user,
            issuer=post.get("issuer", ""),
            client_id=post.get("client_id", ""),
            client_secret=post.get("client_secret", ""),
            domains=sso_domains_parse(post.get("domains", "")),
            default_role=post.get("default_role", ""),
            required=post.get("required") == "on",
            enabled=post.get("enabled") == "on",
        )
    except SSOError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Single sign-on saved.")
    return redirect("accounts:security", org_slug=request.organization.slug)


@org_view(roles=frozenset({Role.OWNER}))
@require_POST
def sso_provider_test(request: OrgRequest) -> HttpResponse:
    """Fetch the provider's discovery document and say whether it answers as it should."""
    provider = sso_provider_of(org=request.organization)
    if provider is None:
        messages.error(request, "Register a provider first.")
    else:
        try:
            sso_discovery(issuer=provider.issuer)
        except SSOError as exc:
            messages.error(request, f"Test failed: {exc}")
        else:
            messages.success(request, f"The provider at {provider.issuer} answered.")
    return redirect("accounts:security", org_slug=request.organization.slug)
