"""Whose spend it is: a personal key's usage is always its owner's, whatever `member` it
names, and over-cap flagging follows the key and member that charged, whichever
reservation settled the record."""

from decimal import Decimal

import pytest

from spend.models import Budget, OverCap, Reservation
from tests.factories import make_api_key
from tests.spend.conftest import post
from usage.models import Query

pytestmark = pytest.mark.django_db

AUTHORIZE = "/api/v1/usage/authorize"
RECORDS = "/api/v1/usage/records"
BODY = {"model": "llama-3.1-8b", "input_tokens": 1000, "max_output_tokens": 1000}


def _record(record_id: str, **extra) -> dict:
    return {"id": record_id, "kind": "query", "occurred_at": "2026-11-20T11:59:00Z",
            "model": "llama-3.1-8b", "input_tokens": 1000, "output_tokens": 1000,
            **extra}  # fmt: skip


@pytest.mark.parametrize(
    "named", ["", "owner@example.com", "mia@example.com.", "MIA@Example.com", "someone"]
)
def test_a_personal_key_cannot_escape_its_owners_member_budget(client, spend, frozen, named):
    Budget.objects.create(organization=spend.org, scope="member", member="mia@example.com",
                          period="day", soft_limit=0, hard_limit=0)  # fmt: skip
    _key, secret = make_api_key(org=spend.org, kind="personal", user=spend.member)
    response = post(client, AUTHORIZE, {**BODY, "member": named}, secret)
    assert response.status_code == 402, response.content
    assert response.json()["reason"] == "budget_exceeded"
    assert not Reservation.objects.exists()


@pytest.mark.parametrize("named", ["owner@example.com", "mia@example.com.", "someone"])
def test_a_personal_keys_reservation_and_records_are_its_owners(client, spend, frozen, named):
    _key, secret = make_api_key(org=spend.org, kind="personal", user=spend.member)
    allowed = post(client, AUTHORIZE, {**BODY, "member": named}, secret)
    assert allowed.status_code == 200, allowed.content
    assert Reservation.objects.get().member == "mia@example.com"
    stored = post(client, RECORDS, {"records": [_record("q-1", member=named)]}, secret)
    assert stored.json()["accepted"] == ["q-1"]
    assert Query.objects.get().member == "mia@example.com"


def test_a_workspace_key_still_names_any_member(client, spend, frozen):
    post(client, RECORDS, {"records": [_record("q-1", member="Ops@Example.com")]},
         spend.key_secret)  # fmt: skip
    assert Query.objects.get().member == "ops@example.com"


def test_settling_with_another_keys_reservation_still_flags_the_key_that_charged(
    client, spend, frozen
):
    capped, capped_secret = make_api_key(org=spend.org, name="capped")
    Budget.objects.create(organization=spend.org, scope="api_key", api_key=capped, period="day",
                          soft_limit=0, hard_limit=0)  # fmt: skip
    # The other key (no budget) holds a reservation worth the record's cost.
    reservation = post(client, AUTHORIZE, BODY, spend.key_secret).json()["reservation"]
    answer = post(client, RECORDS, {"records": [_record("q-1", reservation=reservation)]},
                  capped_secret)  # fmt: skip
    assert answer.json()["accepted"] == ["q-1"]
    assert Reservation.objects.get().status == "settled"
    # 2,000 tokens at 0.10 per million, all past the capped key's hard level of 0.
    flagged = OverCap.objects.get()
    assert (flagged.reason, flagged.api_key_id, flagged.budget.api_key_id) == (
        "budget", capped.pk, capped.pk,
    )  # fmt: skip
    assert flagged.credits == Decimal("0.0002")


def test_the_same_charge_unreserved_is_flagged_alike(client, spend, frozen):
    capped, capped_secret = make_api_key(org=spend.org, name="capped")
    Budget.objects.create(organization=spend.org, scope="api_key", api_key=capped, period="day",
                          soft_limit=0, hard_limit=0)  # fmt: skip
    post(client, RECORDS, {"records": [_record("q-1")]}, capped_secret)
    flagged = OverCap.objects.get()
    assert (flagged.reason, flagged.api_key_id, flagged.credits) == (
        "budget", capped.pk, Decimal("0.0002"),
    )  # fmt: skip
