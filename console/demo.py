"""Demo data: an organization to look around in, and a second one to try isolation.

Idempotent: every object is looked up by a natural key first, so running the demo
twice leaves the same rows.
"""

from dataclasses import dataclass

from django.db import transaction

from accounts.models import Organization, Role, Tier
from accounts.services import (
    membership_set,
    operator_ensure,
    organization_create,
    user_get_or_create,
)
from accounts.signin import user_totp_ensure
from billing.demo import billing_demo_auto_recharge, billing_demo_events
from usage.demo import usage_demo_seed

DEMO_PASSWORD = "demo-usage-console"  # noqa: S105 - printed for the demo login on purpose


@dataclass(frozen=True)
class DemoOrg:
    slug: str
    name: str
    tier: str
    owner_email: str


MAIN = DemoOrg("acme-labs", "Acme Labs", Tier.STARTUP, "owner@acme.example")
# A second organization the demo owner also belongs to, to show the switcher.
SANDBOX = DemoOrg("acme-sandbox", "Acme Sandbox", Tier.FREE, "owner@acme.example")
# A smaller organization the demo owner does NOT belong to: try opening its pages.
OTHER = DemoOrg("globex", "Globex", Tier.DEVELOPER, "owner@globex.example")
# The platform's operator: Django admin (/admin/), across every organization.
OPERATOR_EMAIL = "operator@usage-console.example"
# A member who signs in with an authenticator app (the demo prints its secret).
TWO_FACTOR_EMAIL = "tara@acme.example"


@dataclass(frozen=True)
class DemoLogins:
    organization: Organization
    email: str
    password: str
    other_organization: Organization
    other_email: str
    api_key: str = ""  # a working workspace key of the demo organization
    operator_email: str = OPERATOR_EMAIL  # a superuser for Django admin, same password
    two_factor_email: str = TWO_FACTOR_EMAIL  # same password, then an authenticator app's code
    two_factor_secret: str = ""  # that app's base32 secret


def _ensure(spec: DemoOrg) -> Organization:
    org = Organization.objects.filter(slug=spec.slug).first()
    if org is None:
        org = organization_create(
            name=spec.name,
            tier=spec.tier,
            owner_email=spec.owner_email,
            owner_password=DEMO_PASSWORD,
            slug=spec.slug,
        ).organization
    return org


@transaction.atomic
def demo_seed() -> DemoLogins:
    """Create (or find) the demo organizations and their people."""
    main = _ensure(MAIN)
    _ensure(SANDBOX)
    other = _ensure(OTHER)
    operator_ensure(email=OPERATOR_EMAIL, password=DEMO_PASSWORD)
    for email, role in [("ana@acme.example", Role.ADMIN), ("ben@acme.example", Role.MEMBER)]:
        user, _ = user_get_or_create(email=email, password=DEMO_PASSWORD)
        if not user.memberships.filter(organization=main).exists():
            membership_set(organization=main, user=user, role=role)
    tara, _ = user_get_or_create(email=TWO_FACTOR_EMAIL, password=DEMO_PASSWORD)
    if not tara.memberships.filter(organization=main).exists():
        membership_set(organization=main, user=tara, role=Role.MEMBER)
    two_factor_secret = user_totp_ensure(user=tara)
    # Payments and usage go to the ledger in the order of their times.
    usage = usage_demo_seed(org=main, events=billing_demo_events(main))
    billing_demo_auto_recharge(main)
    return DemoLogins(
        api_key=usage.api_key,
        organization=main,
        email=MAIN.owner_email,
        password=DEMO_PASSWORD,
        other_organization=other,
        other_email=OTHER.owner_email,
        two_factor_secret=two_factor_secret,
    )
