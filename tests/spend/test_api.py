"""The spend-control endpoints: estimate, authorize, budgets, pause; isolation and bad input."""

from decimal import Decimal

import pytest

from spend.models import Budget, KeyPause, Reservation
from tests.factories import make_api_key, make_org
from tests.spend.conftest import NOW, bearer, post
from usage.models import Query

pytestmark = pytest.mark.django_db

AUTHORIZE = "/api/v1/usage/authorize"
BUDGETS = "/api/v1/budgets"
MESSAGES = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Explain quantum computing."},
]


def test_estimate_matches_the_reference_example(client, spend):
    response = post(
        client,
        "/api/v1/usage/estimate",
        {"model": "llama-3.1-8b", "messages": MESSAGES, "max_output_tokens": 500},
        spend.key_secret,
    )
    assert response.status_code == 200, response.content
    data = response.json()
    # 4 + 5 content tokens, 4 of overhead per message; 0.10 per million in and out.
    assert data == {
        "estimated_input_tokens": 17,
        "max_output_tokens": 500,
        "estimated_cost": str(Decimal(517) * Decimal("0.10") / 10**6),
    }


def test_estimate_prices_from_the_price_list(client, spend):
    from billing.models import PriceModel

    PriceModel.objects.filter(name="llama-3.1-70b").update(
        input_price_per_million=Decimal("1"), output_price_per_million=Decimal("3")
    )
    data = post(
        client,
        "/api/v1/usage/estimate",
        {"model": "llama-3.1-70b", "messages": MESSAGES, "max_output_tokens": 100},
        spend.owner_token,
    ).json()
    assert Decimal(data["estimated_cost"]) == (Decimal(17) * 1 + Decimal(100) * 3) / 10**6


def test_authorize_reserves_and_a_record_settles_it(client, spend, frozen):
    response = post(
        client,
        AUTHORIZE,
        {"model": "llama-3.1-8b", "input_tokens": 1000, "max_output_tokens": 1000},
        spend.key_secret,
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["allowed"] is True and data["estimated_cost"] == "0.0002"
    assert data["expires_at"] == int(NOW.timestamp()) + 600  # ten minutes
    assert response.has_header("X-RateLimit-Remaining-RPM")
    assert response["X-RateLimit-Remaining-TPM"] == str(10_000_000 - 2000)
    reservation = Reservation.objects.get(public_id=data["reservation"])
    assert reservation.status == "held" and reservation.credits == Decimal("0.0002")
    record = {
        "id": "q-1",
        "kind": "query",
        "occurred_at": "2026-11-20T11:59:00Z",
        "model": "llama-3.1-8b",
        "input_tokens": 1000,
        "output_tokens": 200,
        "reservation": data["reservation"],
    }
    ingest = post(client, "/api/v1/usage/records", {"records": [record]}, spend.key_secret)
    assert ingest.json()["accepted"] == ["q-1"]
    reservation.refresh_from_db()
    assert reservation.status == "settled"
    assert reservation.settled_credits == Decimal("0.00012") and reservation.record_id == "q-1"
    budgets = client.get(BUDGETS, headers=bearer(spend.key_secret)).json()
    assert budgets == {"budgets": []}


def test_hard_budget_refuses_with_402_and_the_card_shows_figures(client, spend, frozen):
    created = post(
        client,
        BUDGETS,
        {"scope": "api_key", "api_key": spend.key.pk, "period": "day", "soft_limit": "0.0003",
         "hard_limit": "0.0004"},
        spend.owner_token,
    )  # fmt: skip
    assert created.status_code == 201, created.content
    body = {"model": "llama-3.1-8b", "input_tokens": 1000, "max_output_tokens": 1000}
    answers = [post(client, AUTHORIZE, body, spend.key_secret) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 402]
    refused = answers[2].json()
    assert refused["allowed"] is False and refused["reason"] == "budget_exceeded"
    assert refused["limit"] == "0.0004"
    assert refused["retry_after"] == 12 * 3600  # midnight UTC
    card = client.get(f"{BUDGETS}/{created.json()['id']}", headers=bearer(spend.owner_token))
    data = card.json()
    assert (data["spent"], data["reserved"], data["left"]) == ("0", "0.0004", "0")
    assert data["resets_at"].startswith("2026-11-21T00:00:00")


def test_a_paused_key_is_refused_and_resumes(client, spend):
    url = f"/api/v1/keys/{spend.key.pk}"
    assert post(client, f"{url}/pause", {}, spend.member_token).status_code == 403
    assert post(client, f"{url}/pause", {}, spend.owner_token).json()["paused"] is True
    body = {"model": "llama-3.1-8b", "input_tokens": 10, "max_output_tokens": 10}
    refused = post(client, AUTHORIZE, body, spend.key_secret)
    assert refused.status_code == 402 and refused.json()["reason"] == "key_paused"
    # Nothing else about the key changes: it still sends usage.
    record = {"id": "q", "kind": "query", "occurred_at": "2026-11-20T10:00:00Z",
              "model": "llama-3.1-8b", "input_tokens": 1, "output_tokens": 1}  # fmt: skip
    ok = post(client, "/api/v1/usage/records", {"records": [record]}, spend.key_secret)
    assert ok.json()["accepted"] == ["q"]
    assert post(client, f"{url}/resume", {}, spend.owner_token).json()["paused"] is False
    assert post(client, AUTHORIZE, body, spend.key_secret).status_code == 200
    assert not KeyPause.objects.exists()


def test_members_cannot_set_budgets_and_other_orgs_are_404(client, spend):
    body = {"scope": "organization", "period": "month", "soft_limit": "10"}
    assert post(client, BUDGETS, body, spend.member_token).status_code == 403
    assert post(client, BUDGETS, body, spend.key_secret).status_code == 403
    other = make_org()
    other_key, _ = make_api_key(org=other)
    theirs = Budget.objects.create(
        organization=other, scope="organization", period="day", soft_limit=1
    )
    headers = bearer(spend.owner_token)
    assert client.get(f"{BUDGETS}/{theirs.pk}", headers=headers).status_code == 404
    assert client.delete(f"{BUDGETS}/{theirs.pk}", headers=headers).status_code == 404
    patch = client.patch(
        f"{BUDGETS}/{theirs.pk}",
        {"soft_limit": "5"},
        content_type="application/json",
        headers=headers,
    )
    assert patch.status_code == 404
    assert (
        post(client, f"/api/v1/keys/{other_key.pk}/pause", {}, spend.owner_token).status_code == 404
    )
    made = post(client, BUDGETS, {**body, "scope": "api_key", "api_key": other_key.pk},
                spend.owner_token)  # fmt: skip
    assert made.status_code == 400 and made.json()["field"] == "api_key"
    assert not KeyPause.objects.exists()
    assert Budget.objects.filter(organization=spend.org).count() == 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (BUDGETS, {"scope": "organization", "period": "day", "soft_limit": "-1"}, "soft_limit"),
        (
            BUDGETS,
            {"scope": "organization", "period": "day", "soft_limit": "5", "hard_limit": "-2"},
            "hard_limit",
        ),  # fmt: skip
        (BUDGETS, {"scope": "organization", "period": "year", "soft_limit": "5"}, "period"),
        (BUDGETS, {"scope": "member", "period": "day", "soft_limit": "5"}, "member"),
        (AUTHORIZE, {"model": "gpt-9", "input_tokens": 1}, "model"),
        (AUTHORIZE, {"model": "llama-3.1-8b"}, "messages"),
        (AUTHORIZE, {"model": "llama-3.1-8b", "input_tokens": -1}, "input_tokens"),
        (
            AUTHORIZE,
            {"model": "llama-3.1-8b", "messages": [{"role": "user", "content": "x" * 1_000_001}]},
            "messages.0.content",
        ),  # fmt: skip
        (
            "/api/v1/usage/estimate",
            {"model": "nope", "messages": [{"role": "u", "content": "a"}]},
            "model",
        ),  # fmt: skip
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(client, spend, path, body, field):
    secret = spend.owner_token if path == BUDGETS else spend.key_secret
    response = post(client, path, body, secret)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert not Budget.objects.exists() and not Reservation.objects.exists()
    assert not Query.objects.exists()


def test_the_beat_task_expires_overdue_reservations_and_releases_their_holds(spend, frozen):
    from datetime import timedelta

    from billing.models import PriceModel
    from spend.models import SpendHold
    from spend.services.authorize import request_authorize
    from spend.tasks import reservations_expire_due

    model = PriceModel.objects.get(name="llama-3.1-8b")
    verdict = request_authorize(key=spend.key, model=model, input_tokens=10, max_output_tokens=10)
    assert verdict.allowed
    assert reservations_expire_due() == 0
    frozen.shift(timedelta(minutes=10))
    assert reservations_expire_due() == 1
    assert set(SpendHold.objects.values_list("credits", flat=True)) == {Decimal(0)}
    assert Reservation.objects.get().status == "expired"


def test_another_organizations_reservation_settles_nothing(client, spend, frozen):
    other = make_org()
    from tests.factories import grant_credits

    grant_credits(org=other, amount="10")
    _, other_secret = make_api_key(org=other)
    body = {"model": "llama-3.1-8b", "input_tokens": 100, "max_output_tokens": 100}
    theirs = post(client, AUTHORIZE, body, other_secret).json()["reservation"]
    record = {"id": "q-x", "kind": "query", "occurred_at": "2026-11-20T11:00:00Z",
              "model": "llama-3.1-8b", "input_tokens": 100, "output_tokens": 100,
              "reservation": theirs}  # fmt: skip
    ok = post(client, "/api/v1/usage/records", {"records": [record]}, spend.key_secret)
    assert ok.json()["accepted"] == ["q-x"]  # stored as unreserved usage of this org
    assert Reservation.objects.get(public_id=theirs).status == "held"
