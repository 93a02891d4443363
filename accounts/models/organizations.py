"""Organizations, their tiers, members with roles, and single sign-on."""

from django.db import models
from django.utils import timezone

from accounts.models.people import User


class Tier(models.TextChoices):
    FREE = "free", "Free"
    DEVELOPER = "developer", "Developer"
    STARTUP = "startup", "Startup"
    ENTERPRISE = "enterprise", "Enterprise"


# Monthly token allocation per tier (None: unlimited) and whether usage may pass it.
TIER_MONTHLY_TOKENS: dict[str, int | None] = {
    Tier.FREE: 100_000,
    Tier.DEVELOPER: 5_000_000,
    Tier.STARTUP: 25_000_000,
    Tier.ENTERPRISE: None,
}
TIER_OVERAGE_ALLOWED: dict[str, bool] = {
    Tier.FREE: False,
    Tier.DEVELOPER: True,
    Tier.STARTUP: True,
    Tier.ENTERPRISE: True,
}


class Organization(models.Model):
    """The account: owns credits, usage, keys and controllers."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.FREE)
    time_zone = models.CharField(max_length=64, default="UTC")
    # Whether the credit balance may go below zero; the free tier never may.
    allow_overdraft = models.BooleanField(default=False)
    # Owners may require every member to have a second factor before any of its pages.
    require_two_factor = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def monthly_token_allocation(self) -> int | None:
        return TIER_MONTHLY_TOKENS[self.tier]

    @property
    def overage_allowed(self) -> bool:
        return TIER_OVERAGE_ALLOWED[self.tier]

    @property
    def may_overdraw(self) -> bool:
        return self.allow_overdraft and self.tier != Tier.FREE


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    # Finance: pays, keeps the billing details and documents; sees no API keys.
    BILLING = "billing", "Billing"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


# Roles that manage keys, settings, the team and read the audit log.
MANAGER_ROLES = frozenset({Role.OWNER, Role.ADMIN})
# Roles that add credits and read statements and receipts.
FINANCE_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.BILLING})
# Roles that change the billing details printed on documents.
BILLING_DETAILS_ROLES = frozenset({Role.OWNER, Role.BILLING})
# Roles that see the organization's API keys.
KEY_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER})
# Roles that may be limited to some projects; the others always see every project.
PROJECT_LIMITABLE_ROLES = frozenset({Role.MEMBER, Role.VIEWER})


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    # A member or viewer who sees only the projects granted to them (ProjectMembership);
    # an explicit flag, so taking away the last grant narrows access, never widens it.
    limited_to_projects = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization__name", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="uniq_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def can_manage(self) -> bool:
        return self.role in MANAGER_ROLES

    @property
    def can_pay(self) -> bool:
        return self.role in FINANCE_ROLES

    @property
    def can_see_keys(self) -> bool:
        return self.role in KEY_ROLES

    @property
    def is_limited_to_projects(self) -> bool:
        return self.limited_to_projects and self.role in PROJECT_LIMITABLE_ROLES

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER


class SSOProvider(models.Model):
    """An organization's OpenID Connect identity provider: people whose email is in one of
    its domains sign in there; the first sign-in makes them a member (default_role)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="sso_provider"
    )
    issuer = models.URLField(max_length=300)
    client_id = models.CharField(max_length=200)
    # Fernet-encrypted with the key of the authenticator-app secrets (accounts/auth.py).
    client_secret_encrypted = models.TextField()
    default_role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    # Required: people of these domains cannot use a password, only the provider.
    required = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.issuer} for {self.organization}"

    @property
    def domains(self) -> list[str]:
        """The email domains this provider signs in, in the order the owner gave them."""
        return [row.domain for row in self.domain_rows.order_by("pk")]


class SSODomain(models.Model):
    """An email domain an organization's provider signs in; unique, so a domain belongs
    to one organization at most, even when two owners claim it at the same moment."""

    provider = models.ForeignKey(SSOProvider, on_delete=models.CASCADE, related_name="domain_rows")
    # Lower-cased, without the "@".
    domain = models.CharField(max_length=253, unique=True)

    def __str__(self) -> str:
        return self.domain
