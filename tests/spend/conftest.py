from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import APIKey, Organization, Role, Tier
from accounts.services import session_token_issue
from billing.models import PriceModel
from tests.factories import grant_credits, make_api_key, make_member, make_org, make_user

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday


class Seeded:
    pass


@pytest.fixture
def spend(db):
    """An organization with credits, an owner's and a member's session tokens, a key."""
    s = Seeded()
    s.org = make_org(tier=Tier.STARTUP)
    grant_credits(org=s.org, amount="100")
    s.owner = make_user(email="owner@example.com")
    make_member(org=s.org, user=s.owner, role=Role.OWNER)
    s.member = make_user(email="mia@example.com")
    make_member(org=s.org, user=s.member, role=Role.MEMBER)
    s.owner_token = session_token_issue(user=s.owner, org=s.org).secret
    s.member_token = session_token_issue(user=s.member, org=s.org).secret
    s.key, s.key_secret = make_api_key(org=s.org)
    return s


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def post(client, path: str, body: dict, secret: str):
    return client.post(path, body, content_type="application/json", headers=bearer(secret))


@dataclass(frozen=True)
class RaceOrg:
    org: Organization
    ingest_key: APIKey
    gateway_secret: str


@pytest.fixture
def race_org() -> RaceOrg:
    """An organization that may not overdraw, with 12 credits, a key that sends usage and
    a gateway's key, at 1,000 credits per million tokens (a token costs 0.001 credits)."""
    PriceModel.objects.filter(name="llama-3.1-8b").update(
        input_price_per_million=Decimal(1000), output_price_per_million=Decimal(1000)
    )
    org = make_org(allow_overdraft=False)
    grant_credits(org=org, amount="12")
    ingest_key, _ = make_api_key(org=org, name="batch")
    _gateway_key, gateway_secret = make_api_key(org=org, name="gateway")
    return RaceOrg(org, ingest_key, gateway_secret)


def race_query(rid: str, credits: int, reservation: str | None = None) -> dict:
    """A query record costing `credits` at race_org's price (1,000 input tokens a credit)."""
    record = {
        "id": rid,
        "kind": "query",
        "occurred_at": timezone.now().isoformat(),
        "model": "llama-3.1-8b",
        "input_tokens": credits * 1000,
        "output_tokens": 0,
    }
    return record | ({"reservation": reservation} if reservation else {})
