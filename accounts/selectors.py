"""Reads for accounts."""

from django.db.models import QuerySet

from accounts.credentials import secret_hash
from accounts.models import (
    APIKey,
    IdempotencyRecord,
    Invitation,
    Membership,
    Organization,
    SessionToken,
    User,
)


def membership_for(*, user: User, org_slug: str) -> Membership | None:
    """The user's membership in the organization with this slug, if any."""
    return (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__slug=org_slug)
        .first()
    )


def memberships_of(*, user: User) -> QuerySet[Membership]:
    """Every organization the user belongs to, by name."""
    return Membership.objects.select_related("organization").filter(user=user)


def organization_members(*, org: Organization) -> QuerySet[Membership]:
    """The organization's members with their roles."""
    return Membership.objects.select_related("user").filter(organization=org)


def invitations_pending(*, org: Organization) -> QuerySet[Invitation]:
    """The organization's open invitations (expired ones too, to resend), newest first."""
    return Invitation.objects.select_related("invited_by").filter(
        organization=org, accepted_at__isnull=True, revoked_at__isnull=True
    )


def account_exists_for(*, email: str) -> bool:
    """Whether someone already has an account with this address."""
    return User.objects.filter(email__iexact=email.strip()).exists()


def apikeys_of(*, org: Organization) -> QuerySet[APIKey]:
    """The organization's API keys, newest first (revoked ones included)."""
    return APIKey.objects.select_related("user", "project").filter(organization=org)


def apikey_for_secret(*, secret: str) -> APIKey | None:
    """The key whose secret this is (revoked or not), with its organization and project;
    else None."""
    if not secret or len(secret) > 200:
        return None
    return (
        APIKey.objects.select_related("organization", "user", "project")
        .filter(secret_hash=secret_hash(secret))
        .first()
    )


def session_token_for_secret(*, secret: str) -> SessionToken | None:
    """The session token whose secret this is (expired or revoked too), with its user and
    organization; else None."""
    if not secret or len(secret) > 200:
        return None
    return (
        SessionToken.objects.select_related("user", "organization")
        .filter(token_hash=secret_hash(secret))
        .first()
    )


def session_tokens_of(*, user: User, org: Organization) -> QuerySet[SessionToken]:
    """The person's own session tokens for the organization, newest first."""
    return SessionToken.objects.filter(user=user, organization=org)


def idempotency_record_get(
    *, org: Organization, endpoint: str, key: str
) -> IdempotencyRecord | None:
    """The first answer kept for this Idempotency-Key, if any."""
    return IdempotencyRecord.objects.filter(organization=org, endpoint=endpoint, key=key).first()
