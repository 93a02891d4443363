"""Plain factory functions for tests: each makes one valid object with overridable fields."""

import itertools

from accounts.models import Membership, Organization, Role, Tier, User

PASSWORD = "correct-horse-battery"  # noqa: S105
_seq = itertools.count(1)


def make_user(*, email: str | None = None, password: str = PASSWORD, **extra) -> User:
    n = next(_seq)
    return User.objects.create_user(
        email=email or f"user{n}@example.com", password=password, **extra
    )


def make_org(*, name: str | None = None, tier: str = Tier.STARTUP, **extra) -> Organization:
    n = next(_seq)
    return Organization.objects.create(
        name=name or f"Org {n}", slug=extra.pop("slug", f"org-{n}"), tier=tier, **extra
    )


def make_member(
    *, org: Organization | None = None, user: User | None = None, role: str = Role.OWNER
) -> Membership:
    return Membership.objects.create(
        organization=org or make_org(), user=user or make_user(), role=role
    )
