"""Reads for accounts."""

from django.db.models import QuerySet

from accounts.models import Membership, Organization, User


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
