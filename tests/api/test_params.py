"""Every bad parameter is a 400 JSON naming it; bad bodies name their field."""

import pytest

from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db

WS = "/api/v1/account/worker-sessions"
QPM = "/api/v1/account/queries-per-model"


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/usage/llm?start_date=yesterday", "start_date"),
        ("/api/v1/usage/llm?end_date=2026-13-01", "end_date"),
        ("/api/v1/usage/llm?start_date=2026-11-20&end_date=2026-11-19", "start_date"),
        ("/api/v1/usage/llm?start_date=0001-01-01", "start_date"),
        ("/api/v1/usage/llm?page=0", "page"),
        ("/api/v1/usage/llm?page=99", "page"),
        ("/api/v1/usage/llm?page_size=501", "page_size"),
        ("/api/v1/usage/llm?org_id=abc", "org_id"),
        ("/api/v1/usage/llm/organization/{org}/summary?end_date=soon", "end_date"),
        ("/api/v1/usage/matching?task=XYZ", "task"),
        ("/api/v1/usage/matching?task=IDR&start_date=2026-11-20&end_date=2026-11-01", "start_date"),
        (f"{WS}?start_date=abc&end_date=1", "start_date"),
        (f"{WS}?start_date=1", "end_date"),
        (f"{WS}?start_date=2000&end_date=1000", "start_date"),
        (f"{WS}?start_date=-5&end_date=1000", "start_date"),
        (f"{WS}?start_date=0&end_date=99999999999999999999", "end_date"),
        (f"{QPM}?start_date=0&end_date=1&page=2", "page"),
        (f"{QPM}?start_date=0", "end_date"),
    ],
)
def test_bad_parameters_are_400_naming_them(client, seeded, url, field):
    response = client.get(url.format(org=seeded.org.pk), headers=bearer(seeded.key_secret))
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["field"] == field
    assert data["error"] == "invalid_parameter"
    assert field in data["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "credits"),
        ({"credits": "lots"}, "credits"),
        ({"credits": -5}, "credits"),
        ({"credits": "10.001"}, "credits"),
        ({"credits": 10, "card": {"number": "4242424242424242"}}, "card.exp_month"),
        ({"credits": 10, "card": {"number": "1", "exp_month": 1, "exp_year": 2099,
                                  "cvc": "123"}}, "card.number"),
    ],
)  # fmt: skip
def test_bad_add_credit_bodies_name_the_field(client, seeded, body, field):
    response = client.post(
        "/api/v1/account/credits",
        body,
        content_type="application/json",
        headers=bearer(seeded.token_secret),
    )
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field


def test_an_unparseable_body_is_400(client, seeded):
    response = client.post(
        "/api/v1/account/credits",
        "{nope",
        content_type="application/json",
        headers=bearer(seeded.token_secret),
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/usage/records", '{"records": [{"id": "a\\u0000", "kind": "query"}]}',
         "records[0].id"),
        ("/api/v1/jobs", '{"id": "j", "cores": 1, "controller": "x\\u0000"}', "controller"),
    ],
)  # fmt: skip
def test_nul_characters_are_refused_before_the_database(client, seeded, url, body, field):
    """PostgreSQL cannot store NUL in text: a 400 naming the field, never a 500."""
    response = client.post(
        url, body, content_type="application/json", headers=bearer(seeded.key_secret)
    )
    assert response.status_code == 400 and response.json()["field"] == field


def test_odd_time_zone_offsets_are_restated_in_utc(client, seeded):
    """ISO 8601 allows offsets PostgreSQL refuses (past ±15:59): same instant, in UTC."""
    record = {"id": "q-odd", "kind": "query", "occurred_at": "2026-11-20T03:30:00+17:30",
              "model": "llama-3.1-8b", "input_tokens": 1, "output_tokens": 1}  # fmt: skip
    response = client.post(
        "/api/v1/usage/records",
        {"records": [record]},
        content_type="application/json",
        headers=bearer(seeded.key_secret),
    )
    assert response.json()["accepted"] == ["q-odd"]
    from tests.api.conftest import at
    from usage.models import Query

    assert Query.objects.get(client_id="q-odd").occurred_at == at("2026-11-19T10:00")
