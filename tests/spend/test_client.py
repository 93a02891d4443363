"""The Python client's spend calls against the live server."""

from decimal import Decimal

import pytest

import usage_console_client as console
from spend.models import Budget
from tests.api.conftest import seed

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Explain quantum computing."},
]


@pytest.fixture
def world(live_server):
    data = seed()
    console.reset()
    console.set_base_url(live_server.url)
    console.set_session_token(data.token_secret)
    console.set_api_key(data.key_secret)
    yield data
    console.reset()


def test_estimate_authorize_and_budgets(world):
    estimate = console.estimate_request_cost(MESSAGES, model="llama-3.1-8b", max_output_tokens=500)
    assert estimate["estimated_input_tokens"] == 17
    assert Decimal(estimate["estimated_cost"]) == Decimal(517) * Decimal("0.10") / 10**6
    budget = console.create_budget(scope="organization", period="day", soft_limit="0.00005",
                                   hard_limit="0.00006")  # fmt: skip
    assert budget["hard_limit"] == "0.00006"
    assert Budget.objects.filter(organization=world.org).count() == 1
    allowed = console.authorize_request("llama-3.1-8b", messages=MESSAGES)
    assert allowed["allowed"] is True and allowed["reservation"].startswith("rsv_")
    refused = console.authorize_request("llama-3.1-8b", messages=MESSAGES)
    assert refused == {"allowed": False, "reason": "budget_exceeded", "limit": "0.00006",
                       "retry_after": refused["retry_after"], "budget": budget["id"],
                       "scope": "organization", "period": "day"}  # fmt: skip
    [card] = console.list_budgets()
    assert card["reserved"] == allowed["estimated_cost"]
    console.delete_budget(budget["id"])
    assert console.list_budgets() == []
