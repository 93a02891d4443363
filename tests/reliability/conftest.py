"""Fixtures of the reliability tests' bad-input files (test_bad_input*.py)."""

import pytest

from accounts.models import Tier
from tests.factories import grant_credits, make_api_key, make_controller, make_org
from tests.reliability.bad_input import TRIED


@pytest.fixture(scope="module")
def tried_summary():
    yield
    if not TRIED:
        return
    parts = ", ".join(f"{name} {count}" for name, count in sorted(TRIED.items()))
    print(f"\n[bad input] {sum(TRIED.values())} inputs tried: {parts}")
    TRIED.clear()


@pytest.fixture
def api(settings):
    """An organization with credits, a controller and an API key; rate limits out of reach
    (a refusal for speed is not what these tests are about)."""
    settings.USAGE_RATE_LIMITS = {Tier.STARTUP: (10**9, 10**15)}
    org = make_org(tier=Tier.STARTUP)
    grant_credits(org=org, amount="1000000")
    make_controller(org=org, name="dgx-01")
    _, secret = make_api_key(org=org)
    return {"org": org, "headers": {"Authorization": f"Bearer {secret}"}}
