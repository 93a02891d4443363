"""Spend controls take exactly what they say: integers are JSON integers (not "10",
true or 1.0), a budget level is a whole number of the smallest credit unit
(0.0000000001) or refused, and an authorization that would hold nothing stores nothing."""

from decimal import Decimal

import pytest

from spend.models import Budget, Reservation, SpendHold
from tests.spend.conftest import post

pytestmark = pytest.mark.django_db

AUTHORIZE = "/api/v1/usage/authorize"
ESTIMATE = "/api/v1/usage/estimate"
BUDGETS = "/api/v1/budgets"
MESSAGES = [{"role": "user", "content": "Hello there"}]


@pytest.mark.parametrize("value", ["10", True, 1.0, 10.5])
@pytest.mark.parametrize(
    ("path", "field", "body"),
    [
        (AUTHORIZE, "input_tokens", {"max_output_tokens": 10}),
        (AUTHORIZE, "max_output_tokens", {"input_tokens": 10}),
        (ESTIMATE, "max_output_tokens", {"messages": MESSAGES}),
    ],
)
def test_token_counts_must_be_json_integers(client, spend, path, field, body, value):
    response = post(client, path, {"model": "llama-3.1-8b", **body, field: value},
                    spend.key_secret)  # fmt: skip
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert not Reservation.objects.exists()


@pytest.mark.parametrize("field", ["soft_limit", "hard_limit"])
@pytest.mark.parametrize("amount", ["1e-30", "0.00000000001", "5.00000000001"])
def test_a_budget_level_finer_than_the_smallest_credit_unit_is_refused(
    client, spend, field, amount
):
    body = {"scope": "organization", "period": "day", "soft_limit": "0", "hard_limit": "10"}
    response = post(client, BUDGETS, {**body, field: amount}, spend.owner_token)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert not Budget.objects.exists()


def test_the_smallest_credit_unit_itself_is_a_level(client, spend):
    body = {"scope": "organization", "period": "day", "soft_limit": "0.0000000001"}
    assert post(client, BUDGETS, body, spend.owner_token).status_code == 201
    assert Budget.objects.get().soft_limit == Decimal("0.0000000001")


def test_an_authorization_that_would_hold_nothing_stores_no_reservation(client, spend):
    body = {"model": "llama-3.1-8b", "input_tokens": 0, "max_output_tokens": 0}
    response = post(client, AUTHORIZE, body, spend.key_secret)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["allowed"] is True and data["estimated_cost"] == "0"
    assert data["reservation"] is None
    assert not Reservation.objects.exists()
    assert not SpendHold.objects.filter(credits__gt=0).exists()
