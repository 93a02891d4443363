"""Reads for accounts."""

from django.db.models import QuerySet

from accounts.models import APIKey, Membership, Organization, User


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


def apikeys_of(*, org: Organization) -> QuerySet[APIKey]:
    """The organization's API keys, newest first (revoked ones included)."""
    return APIKey.objects.select_related("user").filter(organization=org)


def apikey_for_secret(*, secret: str) -> APIKey | None:
    """The key whose secret this is (revoked or not), with its organization; else None."""
    from accounts.services import secret_hash

    if not secret or len(secret) > 200:
        return None
    return (
        APIKey.objects.select_related("organization")
        .filter(secret_hash=secret_hash(secret))
        .first()
    )
