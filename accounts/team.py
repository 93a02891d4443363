"""Team services: invitations by signed single-use link, role changes and removal.

An invitation link is `/accounts/invitations/<org slug>/<token>/`, the token signed with
the site's secret over (organization, invitation, nonce). It works once, for 7 days from
its sending, for its own organization only; resending draws a new nonce, so the older
link stops working. The last owner of an organization can be neither removed nor demoted.
Removing or demoting someone withdraws the pending invitations they sent that they could
no longer send (all of them on removal; an owner made admin keeps their non-owner ones).
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.mail import LinkSafeEmail, site_link
from accounts.models import (
    INVITATION_LIFETIME_DAYS,
    KEY_ROLES,
    MANAGER_ROLES,
    AuditAction,
    Invitation,
    Membership,
    Organization,
    Role,
    User,
)
from accounts.services import membership_remove, personal_keys_revoke

logger = logging.getLogger(__name__)

INVITATION_SALT = "accounts.invitation"


class TeamError(Exception):
    """A team change the console refuses; the message is for the person."""


class InvitationRefused(Exception):
    """An invitation link that cannot be used; `reason` is one of REFUSALS' keys."""

    def __init__(self, reason: str) -> None:
        super().__init__(REFUSALS[reason])
        self.reason = reason


# What the accept page says for each refused link.
REFUSALS = {
    "tampered": "This invitation link is not valid. Check that you copied all of it, or ask "
    "for a new invitation.",
    "other_organization": "This invitation link is for another organization.",
    "replaced": "A newer invitation was sent for this address; use the link in the latest email.",
    "used": "This invitation was already used.",
    "revoked": "This invitation was withdrawn.",
    "expired": "This invitation expired. Ask an owner or admin of the organization to send a "
    "new one.",
    "already_member": "You are already a member of this organization.",
    "wrong_person": "This invitation was sent to another email address.",
}


@dataclass(frozen=True)
class SentInvitation:
    invitation: Invitation
    url: str  # the accept link (absolute, with SITE_URL)


def invitation_lifetime() -> timedelta:
    return timedelta(days=INVITATION_LIFETIME_DAYS)


def invitation_token(invitation: Invitation) -> str:
    """The signed token of the invitation's current link."""
    return signing.dumps(
        {"o": invitation.organization_id, "i": invitation.pk, "n": invitation.nonce},
        salt=INVITATION_SALT,
        compress=True,
    )


def invitation_url(invitation: Invitation) -> str:
    return site_link(
        "invitation_accept", invitation.organization.slug, invitation_token(invitation)
    )


def _email_send(invitation_id: int, url: str) -> None:
    invitation = Invitation.objects.select_related("organization", "invited_by").get(
        pk=invitation_id
    )
    inviter = invitation.invited_by.email if invitation.invited_by else "An administrator"
    org = invitation.organization
    # The link on a line of its own: a double click or a terminal selects all of it.
    LinkSafeEmail(
        subject=f"You are invited to {org.name} on Usage Console",
        body=(
            f"{inviter} invited you to join {org.name} as {invitation.get_role_display()}.\n\n"
            f"Accept the invitation:\n{url}\n\n"
            f"The link works once and expires on {invitation.expires_at:%d %b %Y %H:%M} UTC."
        ),
        to=[invitation.email],
    ).send()


def _send(invitation: Invitation) -> SentInvitation:
    url = invitation_url(invitation)
    transaction.on_commit(partial(_email_send, invitation.pk, url))
    return SentInvitation(invitation=invitation, url=url)


def _grant_check(*, actor_role: str, role: str) -> None:
    if role not in Role.values:
        raise TeamError(f"Unknown role {role!r}.")
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise TeamError("Only owners can make someone an owner.")


def _may_grant(*, held: str | None, role: str) -> bool:
    """Whether someone holding `held` (None: no longer a member) may send an invitation
    for `role` now: owners and admins invite, only owners invite owners."""
    return held in MANAGER_ROLES and (role != Role.OWNER or held == Role.OWNER)


def _invitations_beyond(*, org: Organization, sender: User, held: str | None, actor: User) -> None:
    """Withdraw the sender's pending invitations they could no longer send: an invitation
    carries its sender's authority, so it must not outlive it (a departing admin would
    otherwise keep admin access through a second address)."""
    pending = Invitation.objects.select_for_update().filter(
        organization=org, invited_by=sender, accepted_at__isnull=True, revoked_at__isnull=True
    )
    for invitation in pending:
        if not _may_grant(held=held, role=invitation.role):
            invitation_revoke(invitation=invitation, actor=actor)


@transaction.atomic
def invitation_create(
    *, org: Organization, email: str, role: str, invited_by: User, actor_role: str = Role.OWNER
) -> SentInvitation:
    """Invite an address with a role and email the link (an open invitation is renewed)."""
    email = User.objects.normalize_email(email).strip().lower()
    _grant_check(actor_role=actor_role, role=role)
    if Membership.objects.filter(organization=org, user__email__iexact=email).exists():
        raise TeamError(f"{email} is already a member.")
    now = timezone.now()
    fields = {
        "role": role,
        "nonce": secrets.token_hex(16),
        "invited_by": invited_by,
        "sent_at": now,
        "expires_at": now + invitation_lifetime(),
    }
    open_ = (
        Invitation.objects.select_for_update()
        .filter(organization=org, email=email, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if open_ is None:
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(
                    organization=org, email=email, created_at=now, **fields
                )
        except IntegrityError:
            raise TeamError(f"{email} was invited at the same moment; reload the page.") from None
    else:
        for name, value in fields.items():
            setattr(open_, name, value)
        open_.save(update_fields=list(fields))
        invitation = open_
    audit_record(
        org=org,
        actor=invited_by,
        action=AuditAction.MEMBER_INVITED,
        summary=f"Invited {email} as {invitation.get_role_display()}",
        target=f"invitation:{invitation.pk}",
        data={"email": email, "role": role},
    )
    return _send(invitation)


@transaction.atomic
def invitation_resend(*, invitation: Invitation, actor: User) -> SentInvitation:
    """Send a pending invitation again with a new link valid 7 days (the old link dies)."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_open:
        raise TeamError("Only a pending invitation can be sent again.")
    now = timezone.now()
    invitation.nonce = secrets.token_hex(16)
    invitation.sent_at, invitation.expires_at = now, now + invitation_lifetime()
    invitation.save(update_fields=["nonce", "sent_at", "expires_at"])
    audit_record(
        org=invitation.organization,
        actor=actor,
        action=AuditAction.INVITATION_RESENT,
        summary=f"Sent the invitation to {invitation.email} again",
        target=f"invitation:{invitation.pk}",
    )
    return _send(invitation)


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User) -> Invitation:
    """Withdraw a pending invitation: its link stops working (idempotent)."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_open:
        return invitation
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        org=invitation.organization,
        actor=actor,
        action=AuditAction.INVITATION_REVOKED,
        summary=f"Withdrew the invitation to {invitation.email}",
        target=f"invitation:{invitation.pk}",
    )
    return invitation


def invitation_for_token(*, org_slug: str, token: str, at: datetime | None = None) -> Invitation:
    """The open invitation this link names, or InvitationRefused saying why not."""
    try:
        payload = signing.loads(token, salt=INVITATION_SALT)
    except signing.BadSignature:
        raise InvitationRefused("tampered") from None
    if not isinstance(payload, dict) or not {"o", "i", "n"} <= set(payload):
        raise InvitationRefused("tampered")
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(pk=payload["i"], organization_id=payload["o"])
        .first()
    )
    if invitation is None:
        raise InvitationRefused("tampered")
    if invitation.organization.slug != org_slug:
        raise InvitationRefused("other_organization")
    if invitation.accepted_at is not None:
        raise InvitationRefused("used")
    if invitation.revoked_at is not None:
        raise InvitationRefused("revoked")
    if invitation.nonce != payload["n"]:
        raise InvitationRefused("replaced")
    if (at or timezone.now()) >= invitation.expires_at:
        raise InvitationRefused("expired")
    return invitation


@transaction.atomic
def invitation_accept(
    *, org_slug: str, token: str, user: User | None = None, password: str = "", full_name: str = ""
) -> Membership:
    """Use the link once: the signed-in person (or a new account made for the invited
    address with this password) joins the organization with the invitation's role."""
    checked = invitation_for_token(org_slug=org_slug, token=token)
    list(Invitation.objects.select_for_update().filter(pk=checked.pk).values("pk"))
    # Checked again under the lock: two clicks on one link make one membership.
    invitation = invitation_for_token(org_slug=org_slug, token=token)
    org = invitation.organization
    if user is None:
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise TeamError("An account with this address exists: log in to accept.")
        user = User.objects.create_user(
            email=invitation.email, password=password, full_name=full_name.strip()[:150]
        )
    elif user.email.lower() != invitation.email.lower():
        raise InvitationRefused("wrong_person")
    if Membership.objects.filter(organization=org, user=user).exists():
        raise InvitationRefused("already_member")
    membership = Membership.objects.create(organization=org, user=user, role=invitation.role)
    invitation.accepted_at, invitation.accepted_by = timezone.now(), user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        org=org,
        actor=user,
        action=AuditAction.MEMBER_JOINED,
        summary=f"{user.email} joined as {membership.get_role_display()}",
        target=f"membership:{membership.pk}",
        data={"invitation": invitation.pk, "role": membership.role},
    )
    return membership


def _owners_locked(org: Organization) -> list[int]:
    """The owners' membership ids, their rows locked so two changes cannot both leave
    the organization without an owner."""
    return list(
        Membership.objects.select_for_update()
        .filter(organization=org, role=Role.OWNER)
        .values_list("pk", flat=True)
    )


@transaction.atomic
def member_role_change(
    *, membership: Membership, role: str, actor: User, actor_role: str = Role.OWNER
) -> Membership:
    """Give a member another role; the last owner cannot be demoted. A role without API
    keys (billing) loses the person's personal keys here, as removal does."""
    _grant_check(actor_role=actor_role, role=role)
    owners = _owners_locked(membership.organization)
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    if membership.role == Role.OWNER and actor_role != Role.OWNER:
        raise TeamError("Only owners can change an owner's role.")
    if membership.role == role:
        return membership
    if membership.role == Role.OWNER and owners == [membership.pk]:
        raise TeamError(
            "The organization's last owner cannot be demoted: make someone else an owner first."
        )
    before = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    _invitations_beyond(org=membership.organization, sender=membership.user, held=role, actor=actor)
    if role not in KEY_ROLES:
        personal_keys_revoke(user=membership.user, org=membership.organization)
    audit_record(
        org=membership.organization,
        actor=actor,
        action=AuditAction.MEMBER_ROLE_CHANGED,
        summary=f"Changed {membership.user.email} from {Role(before).label} to "
        f"{membership.get_role_display()}",
        target=f"membership:{membership.pk}",
        data={"email": membership.user.email, "from": before, "to": role},
    )
    return membership


@transaction.atomic
def member_remove(*, membership: Membership, actor: User, actor_role: str = Role.OWNER) -> None:
    """Remove a member (their personal keys and session tokens here are revoked with it);
    the last owner cannot be removed."""
    owners = _owners_locked(membership.organization)
    membership = (
        Membership.objects.select_for_update()
        .select_related("user", "organization")
        .get(pk=membership.pk)
    )
    if membership.role == Role.OWNER and actor_role != Role.OWNER:
        raise TeamError("Only owners can remove an owner.")
    if membership.role == Role.OWNER and owners == [membership.pk]:
        raise TeamError("The organization's last owner cannot be removed.")
    org, email, role = membership.organization, membership.user.email, membership.role
    target = f"membership:{membership.pk}"
    _invitations_beyond(org=org, sender=membership.user, held=None, actor=actor)
    membership_remove(membership=membership)
    audit_record(
        org=org,
        actor=actor,
        action=AuditAction.MEMBER_REMOVED,
        summary=f"Removed {email} ({Role(role).label})",
        target=target,
        data={"email": email, "role": role},
    )
