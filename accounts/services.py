"""Writes for accounts: organizations, owners and memberships."""

import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils.text import slugify

from accounts.models import Membership, Organization, Role, Tier, User


@dataclass(frozen=True)
class NewOrganization:
    organization: Organization
    owner: User
    password: str | None  # the owner's password when this call set it, else None


def password_generate() -> str:
    """A random password a person can still copy by hand."""
    return secrets.token_urlsafe(12)


def organization_slug_for(*, name: str) -> str:
    """A unique slug for a new organization's name."""
    base = slugify(name)[:50] or "org"
    slug, n = base, 2
    while Organization.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def user_get_or_create(*, email: str, password: str | None = None) -> tuple[User, str | None]:
    """The user with this email; a new one gets the password given or a generated one."""
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email=email).first()
    if user is not None:
        return user, None
    password = password or password_generate()
    return User.objects.create_user(email=email, password=password), password


@transaction.atomic
def membership_set(*, organization: Organization, user: User, role: str) -> Membership:
    """Put the user in the organization with this role (idempotent)."""
    membership, _ = Membership.objects.update_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    return membership


@transaction.atomic
def organization_create(
    *,
    name: str,
    tier: str = Tier.FREE,
    owner_email: str,
    owner_password: str | None = None,
    slug: str | None = None,
    time_zone: str = "UTC",
) -> NewOrganization:
    """Create an organization and make owner_email its owner (creating the user if new)."""
    if tier not in Tier.values:
        raise ValueError(f"Unknown tier {tier!r}; choose one of {', '.join(Tier.values)}")
    organization = Organization.objects.create(
        name=name,
        slug=slug or organization_slug_for(name=name),
        tier=tier,
        time_zone=time_zone,
    )
    owner, password = user_get_or_create(email=owner_email, password=owner_password)
    membership_set(organization=organization, user=owner, role=Role.OWNER)
    return NewOrganization(organization=organization, owner=owner, password=password)
