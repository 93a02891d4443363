"""Demo data: an organization to look around in, and a second one to try isolation.

Idempotent: every object is looked up by a natural key first, so running the demo
twice leaves the same rows. While the demo is served, `demo_keep_current` keeps it
looking alive: controllers beat, the hour's usage arrives, a month's close brings its
statement.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.demo import projects_demo_ensure, projects_demo_people
from accounts.models import Membership, Organization, Role, Tier
from accounts.services import (
    membership_set,
    operator_ensure,
    organization_create,
    user_get_or_create,
)
from accounts.signin import user_totp_ensure
from billing.demo import (
    PAYMENTS,
    billing_demo_auto_recharge,
    billing_demo_events,
    billing_demo_statements,
    demo_owner,
)
from billing.services import statements_issue_due
from ingest.demo import DEMO_DAYS, usage_demo_heartbeat, usage_demo_seed
from spend.demo import budgets_demo_ensure

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
# (email, role, days a member before the demo's first payment: 0 = joined since)
PEOPLE = [
    (MAIN.owner_email, Role.OWNER, 10),
    ("ana@acme.example", Role.ADMIN, 3),
    ("ben@acme.example", Role.MEMBER, -100),
    (TWO_FACTOR_EMAIL, Role.MEMBER, -120),
]
# A refresh replays this many days: today's usage so far and yesterday's late records.
REFRESH_DAYS = 2


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


def _people(main: Organization) -> None:
    """The demo organization's members, each a member since a date before what they did."""
    first_payment = main.created_at - timedelta(days=PAYMENTS[0][0] + 1)
    for email, role, days_before in PEOPLE:
        user, _ = user_get_or_create(email=email, password=DEMO_PASSWORD)
        if not user.memberships.filter(organization=main).exists():
            membership_set(organization=main, user=user, role=role)
        Membership.objects.filter(organization=main, user=user).update(
            created_at=first_payment - timedelta(days=days_before)
        )


@transaction.atomic
def demo_seed(
    *, days: int = DEMO_DAYS, progress: Callable[[str], object] | None = None
) -> DemoLogins:
    """Create (or find) the demo organizations, their people, `days` days of usage and
    six months of payments, and issue the statements of the months closed since;
    `progress`, if given, hears one line per step."""
    say = progress or (lambda line: None)
    say("organizations, people and the operator")
    main = _ensure(MAIN)
    _ensure(SANDBOX)
    other = _ensure(OTHER)
    operator_ensure(email=OPERATOR_EMAIL, password=DEMO_PASSWORD)
    _people(main)
    # The projects date from before the demo's keys (made DEMO_DAYS + 5 days ago).
    projects_at = timezone.now() - timedelta(days=DEMO_DAYS + 6)
    projects_demo_ensure(org=main, at=projects_at, actor=demo_owner(main))
    projects_demo_people(org=main, at=projects_at, actor=demo_owner(main))
    two_factor_secret = user_totp_ensure(
        user=user_get_or_create(email=TWO_FACTOR_EMAIL, password=DEMO_PASSWORD)[0]
    )
    # Payments and usage go to the ledger in the order of their times.
    say("keys, controllers and six months of payments")
    usage = usage_demo_seed(
        org=main, days=days, events=billing_demo_events(main), progress=progress
    )
    # Set when the projects were (the audit log says so), after the usage so that its
    # ingestion does not check budgets on every batch; levels in spend/demo.py.
    budgets_demo_ensure(org=main, at=projects_at, actor=demo_owner(main))
    billing_demo_auto_recharge(main)
    statements = billing_demo_statements(main, timezone.now())
    if statements:
        say(
            f"statements of {statements[0].month:%B %Y} to {statements[-1].month:%B %Y}"
            if len(statements) > 1
            else f"the statement of {statements[0].month:%B %Y}"
        )
    return DemoLogins(
        api_key=usage.api_key,
        organization=main,
        email=MAIN.owner_email,
        password=DEMO_PASSWORD,
        other_organization=other,
        other_email=OTHER.owner_email,
        two_factor_secret=two_factor_secret,
    )


def demo_keep_current(*, now: datetime | None = None, refresh: bool = False) -> None:
    """What the served demo's world does while it runs: its online controllers beat;
    with `refresh` (hourly), the usage of the hour just past arrives and a month just
    closed gets its statement (issued and emailed as the beat task does)."""
    main = Organization.objects.filter(slug=MAIN.slug).first()
    if main is None:
        return
    usage_demo_heartbeat(org=main, now=now)
    if refresh:
        usage_demo_seed(org=main, days=REFRESH_DAYS)
        statements_issue_due(org=main, now=now)
