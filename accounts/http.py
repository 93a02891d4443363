"""The typed request of organization pages, and the decorator that makes one.

Every page of an organization lives under /o/<org_slug>/. The decorator resolves the
slug against the requester's own memberships only: an organization the user does not
belong to is a 404, exactly like one that does not exist, so nothing leaks.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django_htmx.middleware import HtmxDetails

from accounts.models import Membership, Organization, Role, User
from accounts.selectors import membership_for
from accounts.signin import two_factor_required_missing
from core.request_context import organization_var

SESSION_ORG_KEY = "current_org_slug"
# The organization whose identity provider signed this session in: its provider did the
# authenticating (its own second factor included), so that organization's two-factor
# requirement is met for this session.
SESSION_SSO_ORG_KEY = "sso_org_slug"


class OrgRequest(HttpRequest):
    user: User
    organization: Organization
    membership: Membership
    htmx: HtmxDetails


_PEOPLE = {
    Role.OWNER: "owners",
    Role.ADMIN: "admins",
    Role.BILLING: "billing members",
    Role.MEMBER: "members",
    Role.VIEWER: "viewers",
}


def _refusal(membership: Membership, roles: frozenset[str]) -> str:
    """Why a role may not open a page: who may, and what this person is."""
    allowed = [_PEOPLE[Role(value)] for value, _ in Role.choices if value in roles]
    who = ", ".join(allowed[:-1]) + " and " + allowed[-1] if len(allowed) > 1 else allowed[0]
    return f"This page is for {who}; you are a {_PEOPLE[Role(membership.role)][:-1]} here."


def org_view(
    *, manage: bool = False, roles: frozenset[str] | None = None, two_factor_setup: bool = False
) -> Callable:
    """Require a logged-in member of the URL's organization (an owner or admin if manage;
    one of `roles` when given): anyone else in the organization gets a 403. Where the
    organization requires two-factor, a member without a second factor is sent to set
    one up (Settings → Security, the one page marked `two_factor_setup`)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, org_slug: str, *args: Any, **kwargs: Any):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = membership_for(user=request.user, org_slug=org_slug)
            if membership is None:
                raise Http404("No such organization")
            # Set before the role checks so a 403 page renders in the organization's shell.
            request.membership = membership  # type: ignore[attr-defined]
            request.organization = membership.organization  # type: ignore[attr-defined]
            if manage and not membership.can_manage:
                raise PermissionDenied("Only owners and admins of this organization can do this")
            if roles is not None and membership.role not in roles:
                raise PermissionDenied(_refusal(membership, roles))
            if (
                not two_factor_setup
                and request.session.get(SESSION_SSO_ORG_KEY) != org_slug
                and two_factor_required_missing(user=request.user, org=membership.organization)
            ):
                messages.warning(
                    request,
                    f"{membership.organization.name} requires two-factor authentication: "
                    "set up an authenticator app or a passkey to continue.",
                )
                return redirect("accounts:security", org_slug=org_slug)
            organization_var.set(membership.organization.slug)
            if request.session.get(SESSION_ORG_KEY) != org_slug:
                request.session[SESSION_ORG_KEY] = org_slug
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
