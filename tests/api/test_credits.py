"""Adding credits through the payment service, idempotent by Idempotency-Key."""

import json
from decimal import Decimal

import pytest

from accounts.models import IdempotencyRecord
from billing.models import LedgerEntry, Payment
from billing.selectors import credit_balance
from tests.api.conftest import bearer
from tests.factories import make_payment_method

pytestmark = pytest.mark.django_db

URL = "/api/v1/account/credits"
CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


def add(client, secret, body, key=None):
    headers = bearer(secret)
    if key:
        headers["Idempotency-Key"] = key
    return client.post(URL, json.dumps(body), content_type="application/json", headers=headers)


def test_add_credits_with_the_saved_card(client, seeded):
    make_payment_method(org=seeded.org)
    response = add(client, seeded.token_secret, {"credits": 200}, key="k-1")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["status"] == "succeeded" and data["credits"] == "200" and data["amount"] == "200"
    assert data["credit_balance"] == "275"  # 75 + 200
    assert credit_balance(org=seeded.org) == Decimal("275")
    payment = Payment.objects.get(pk=data["payment_id"])
    assert payment.organization == seeded.org and payment.actor == seeded.owner
    balance = client.get(URL, headers=bearer(seeded.token_secret)).json()
    assert balance["credits"] == "275"


def test_the_same_key_and_body_replays_the_first_answer_and_charges_once(client, seeded):
    first = add(client, seeded.token_secret, {"credits": "20.00", "card": CARD}, key="k-2")
    assert first.status_code == 201
    again = add(client, seeded.token_secret, {"credits": 20, "card": CARD}, key="k-2")
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Payment.objects.filter(organization=seeded.org, amount_minor=2000).count() == 1
    assert LedgerEntry.objects.filter(organization=seeded.org, kind="purchase").count() == 2
    assert credit_balance(org=seeded.org) == Decimal("95")
    # The card details are not kept: only a keyed hash of the body.
    record = IdempotencyRecord.objects.get(key="k-2")
    assert "4242" not in json.dumps(record.response_body) + record.request_hash


def test_the_same_key_with_another_body_is_422(client, seeded):
    assert (
        add(client, seeded.token_secret, {"credits": 20, "card": CARD}, key="k-3").status_code
        == 201
    )
    response = add(client, seeded.token_secret, {"credits": 30, "card": CARD}, key="k-3")
    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert response.json()["field"] == "Idempotency-Key"
    assert credit_balance(org=seeded.org) == Decimal("95")


def test_a_declined_card_is_402_and_replayed_as_402(client, seeded):
    declined = {**CARD, "number": "4000000000000002"}
    response = add(client, seeded.token_secret, {"credits": 20, "card": declined}, key="k-4")
    assert response.status_code == 402
    assert response.json()["status"] == "declined" and response.json()["message"]
    replay = add(client, seeded.token_secret, {"credits": 20, "card": declined}, key="k-4")
    assert replay.status_code == 402 and replay.json() == response.json()
    assert credit_balance(org=seeded.org) == Decimal("75")


def test_no_saved_card_and_no_card_is_400_naming_card(client, seeded):
    response = add(client, seeded.token_secret, {"credits": 20})
    assert response.status_code == 400 and response.json()["field"] == "card"


def test_an_api_key_or_a_members_token_may_not_add_credits(client, seeded):
    from accounts.services import session_token_issue

    assert add(client, seeded.key_secret, {"credits": 20, "card": CARD}).status_code == 403
    member = session_token_issue(user=seeded.ana, org=seeded.org).secret
    assert add(client, member, {"credits": 20, "card": CARD}).status_code == 403
    assert credit_balance(org=seeded.org) == Decimal("75")


def test_another_organizations_card_is_404(client, seeded):
    theirs = make_payment_method(org=seeded.other)
    response = add(client, seeded.token_secret, {"credits": 20, "payment_method_id": theirs.pk})
    assert response.status_code == 404


def test_keys_are_per_organization(client, seeded):
    from accounts.models import Role
    from accounts.services import session_token_issue
    from tests.factories import make_member

    owner = make_member(org=seeded.other, role=Role.OWNER).user
    theirs = session_token_issue(user=owner, org=seeded.other).secret
    assert (
        add(client, seeded.token_secret, {"credits": 20, "card": CARD}, key="same").status_code
        == 201
    )
    response = add(client, theirs, {"credits": 30, "card": CARD}, key="same")
    assert response.status_code == 201 and response.json()["credits"] == "30"
