from datetime import UTC, datetime

import pytest
import time_machine

from accounts.models import Role, Tier
from accounts.services import session_token_issue
from tests.factories import grant_credits, make_api_key, make_member, make_org, make_user

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


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
