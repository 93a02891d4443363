"""Settings → Members (invite, change roles, remove) and Settings → Audit log; the public
page that accepts an invitation link."""

from django.contrib import messages
from django.contrib.auth import login
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.audit import AUDIT_EXPORT_FIELDS, audit_events, audit_export_rows, audit_people
from accounts.confirm import Confirmation, confirm_page
from accounts.forms import AcceptSignupForm, AuditFilterForm, InviteForm, RoleForm
from accounts.http import OrgRequest, org_view
from accounts.models import Role
from accounts.selectors import account_exists_for, invitations_pending, organization_members
from accounts.team import (
    REFUSALS,
    InvitationRefused,
    TeamError,
    invitation_accept,
    invitation_create,
    invitation_for_token,
    invitation_resend,
    invitation_revoke,
    member_remove,
    member_role_change,
)
from core.exports import csv_download

AUDIT_PAGE_SIZE = 50
AUDIT_CSV_HEADER = ["time", "person", "operator", "action", "summary", "target", "ip_address"]
assert len(AUDIT_CSV_HEADER) == len(AUDIT_EXPORT_FIELDS)


def _grantable_roles(request: OrgRequest) -> list[tuple[str, str]]:
    """The roles this person may give: owners any, admins all but owner."""
    if request.membership.is_owner:
        return list(Role.choices)
    return [(value, label) for value, label in Role.choices if value != Role.OWNER]


def _members_page(request: OrgRequest, *, invite_form=None, status: int = 200) -> HttpResponse:
    org = request.organization
    form = invite_form or InviteForm()
    form.fields["role"].choices = _grantable_roles(request)
    context = {
        "nav": "settings",
        "members": organization_members(org=org),
        "invitations": invitations_pending(org=org) if request.membership.can_manage else [],
        "invite_form": form,
        "roles": _grantable_roles(request),
        "now": timezone.now(),
    }
    return render(request, "accounts/members.html", context, status=status)


@org_view()
@require_GET
def members(request: OrgRequest) -> HttpResponse:
    """Everyone sees who is in the organization; owners and admins manage it here."""
    return _members_page(request)


@org_view(manage=True)
@require_POST
def member_invite(request: OrgRequest) -> HttpResponse:
    """Email a signed, single-use link valid for 7 days."""
    form = InviteForm(request.POST)
    form.fields["role"].choices = _grantable_roles(request)
    if not form.is_valid():
        return _members_page(request, invite_form=form, status=400)
    try:
        sent = invitation_create(
            org=request.organization,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            invited_by=request.user,
            actor_role=request.membership.role,
        )
    except TeamError as exc:
        form.add_error("email", str(exc))
        return _members_page(request, invite_form=form, status=400)
    messages.success(request, f"Invitation sent to {sent.invitation.email}.")
    return redirect("accounts:members", org_slug=request.organization.slug)


@org_view(manage=True)
@require_POST
def member_role(request: OrgRequest, member_id: int) -> HttpResponse:
    """Change a member's role (owners only for the owner role; never the last owner)."""
    membership = get_object_or_404(organization_members(org=request.organization), pk=member_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role.")
        return redirect("accounts:members", org_slug=request.organization.slug)
    try:
        membership = member_role_change(
            membership=membership,
            role=form.cleaned_data["role"],
            actor=request.user,
            actor_role=request.membership.role,
        )
    except TeamError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"{membership.user.email} is now {membership.get_role_display()}."
        )
    return redirect("accounts:members", org_slug=request.organization.slug)


@org_view(manage=True)
@require_http_methods(["GET", "POST"])
def member_remove_view(request: OrgRequest, member_id: int) -> HttpResponse:
    """Remove a member; their personal API keys and session tokens here stop working."""
    membership = get_object_or_404(organization_members(org=request.organization), pk=member_id)
    email = membership.user.email
    if request.method == "GET":
        yourself = membership.user_id == request.user.pk
        return confirm_page(
            request,
            Confirmation(
                title="Leave " + request.organization.name + "?"
                if yourself
                else f"Remove {email} from {request.organization.name}?",
                consequence=(
                    "You lose access to this organization"
                    if yourself
                    else f"{email} loses access to this organization"
                )
                + "; the personal API keys and session tokens here are revoked.",
                action="Leave" if yourself else "Remove member",
                back=reverse("accounts:members", args=[request.organization.slug]),
            ),
        )
    try:
        member_remove(membership=membership, actor=request.user, actor_role=request.membership.role)
    except TeamError as exc:
        messages.error(request, str(exc))
        return redirect("accounts:members", org_slug=request.organization.slug)
    messages.success(request, f"Removed {email}; their personal keys and tokens were revoked.")
    if membership.user_id == request.user.pk:
        return redirect("home")
    return redirect("accounts:members", org_slug=request.organization.slug)


@org_view(manage=True)
@require_POST
def invitation_resend_view(request: OrgRequest, invitation_id: int) -> HttpResponse:
    invitation = get_object_or_404(invitations_pending(org=request.organization), pk=invitation_id)
    try:
        invitation_resend(invitation=invitation, actor=request.user)
    except TeamError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Sent the invitation to {invitation.email} again.")
    return redirect("accounts:members", org_slug=request.organization.slug)


@org_view(manage=True)
@require_http_methods(["GET", "POST"])
def invitation_revoke_view(request: OrgRequest, invitation_id: int) -> HttpResponse:
    invitation = get_object_or_404(invitations_pending(org=request.organization), pk=invitation_id)
    if request.method == "GET":
        return confirm_page(
            request,
            Confirmation(
                title=f"Withdraw the invitation to {invitation.email}?",
                consequence="The link in the email stops working; you can invite them again.",
                action="Withdraw invitation",
                back=reverse("accounts:members", args=[request.organization.slug]),
            ),
        )
    invitation_revoke(invitation=invitation, actor=request.user)
    messages.success(request, f"Withdrew the invitation to {invitation.email}.")
    return redirect("accounts:members", org_slug=request.organization.slug)


# Accepting an invitation: a public page (the invited person may have no account yet) ------


def _refused(request: HttpRequest, reason: str) -> HttpResponse:
    return render(
        request,
        "accounts/invitation_refused.html",
        {"reason": reason, "message": REFUSALS[reason]},
        status=410 if reason in {"used", "revoked", "expired", "replaced"} else 400,
    )


@require_http_methods(["GET", "POST"])
def invitation_accept_view(request: HttpRequest, org_slug: str, token: str) -> HttpResponse:
    """Show what the link invites to; signed in as the invited address, join; with no
    account for it, make one; signed in as someone else, say so."""
    try:
        invitation = invitation_for_token(org_slug=org_slug, token=token)
    except InvitationRefused as exc:
        return _refused(request, exc.reason)
    user = request.user if request.user.is_authenticated else None
    if user is not None and user.email.lower() != invitation.email.lower():
        return _refused(request, "wrong_person")
    has_account = user is not None or account_exists_for(email=invitation.email)
    form = AcceptSignupForm(email=invitation.email)
    if request.method == "POST":
        if user is None and has_account:
            return redirect(f"{_login_url()}?next={request.path}")
        if user is None:
            form = AcceptSignupForm(request.POST, email=invitation.email)
        if user is not None or form.is_valid():
            try:
                membership = invitation_accept(
                    org_slug=org_slug,
                    token=token,
                    user=user,
                    password=form.cleaned_data.get("password1", "") if user is None else "",
                    full_name=form.cleaned_data.get("full_name", "") if user is None else "",
                )
            except InvitationRefused as exc:
                return _refused(request, exc.reason)
            except TeamError as exc:
                form.add_error(None, str(exc))
            else:
                if user is None:
                    login(
                        request,
                        membership.user,
                        backend="django.contrib.auth.backends.ModelBackend",
                    )
                messages.success(request, f"Welcome to {membership.organization.name}.")
                return redirect("main", org_slug=membership.organization.slug)
    return render(
        request,
        "accounts/invitation_accept.html",
        {
            "invitation": invitation,
            "signed_in": user is not None,
            "has_account": has_account,
            "form": form,
            "login_url": f"{_login_url()}?next={request.path}",
        },
        status=400 if form.errors else 200,
    )


def _login_url() -> str:
    return reverse("login")


# Audit log ---------------------------------------------------------------------------------


def _audit_filters(request: OrgRequest) -> tuple[AuditFilterForm, str, str]:
    form = AuditFilterForm(request.GET or None, people=audit_people(org=request.organization))
    if form.is_bound and form.is_valid():
        return form, form.cleaned_data["person"], form.cleaned_data["kind"]
    return form, "", ""


@org_view(manage=True)
@require_GET
def audit_log(request: OrgRequest) -> HttpResponse:
    """Who changed what, when and from where: filter by person and kind; paged."""
    form, person, kind = _audit_filters(request)
    events = audit_events(org=request.organization, actor_email=person, action=kind)
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"nav": "settings", "form": form, "page": page, "query": query.urlencode()}
    if request.htmx and request.htmx.target == "audit-events":
        return render(request, "accounts/audit_log.html#audit-events", context)
    return render(request, "accounts/audit_log.html", context)


@org_view(manage=True)
@require_GET
def audit_log_csv(request: OrgRequest) -> HttpResponse:
    """The filtered log as CSV, streamed, text cells escaped against formulas."""
    _form, person, kind = _audit_filters(request)
    org = request.organization
    rows = audit_export_rows(org=org, actor_email=person, action=kind)
    filename = f"{org.slug}-audit-log-{timezone.localdate():%Y-%m-%d}.csv"
    return csv_download(AUDIT_CSV_HEADER, rows, filename=filename)
