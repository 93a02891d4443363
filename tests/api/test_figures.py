"""Every endpoint's figures equal the usage panel's (and the main page's) for the same
seeded records, and the hand-computed totals in the comments."""

from datetime import timedelta
from decimal import Decimal

import pytest

from billing.selectors import finance_overview
from insights.selectors import panel as panel_selectors
from insights.selectors import summaries as summaries_selectors
from tests.api.conftest import NOW, at, bearer, ms

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["api_key", "session_token"])
def auth(request, seeded):
    secret = seeded.key_secret if request.param == "api_key" else seeded.token_secret
    return bearer(secret)


def get(client, url, auth, **params):
    response = client.get(url, params, headers=auth)
    assert response.status_code == 200, response.content
    return response.json()


def test_credit_balance_is_the_main_pages_card(client, seeded, auth):
    data = get(client, "/api/v1/account/credits", auth)
    overview = finance_overview(org=seeded.org)
    # 50 granted + 25 bought; at the default worker type's 0.50/h: 150 h = 6 days 6 hours.
    assert Decimal(data["credits"]) == overview.credit_balance == Decimal("75")
    assert data["estimated_remaining_usage_time"] == {
        "worker_type": overview.remaining_usage_time.worker_type,
        "hourly_rate": "0.5",
        "total_hours": 150,
        "days": 6,
        "hours": 6,
    }
    assert data["last_payment_at"] == "2026-11-20T12:00:00Z"
    assert data["last_payment_date"] == "2026-11-20"
    assert overview.last_payment_at == NOW
    assert data["organization_id"] == seeded.org.pk


def test_worker_sessions_are_the_main_pages_runtime_per_model(client, seeded, auth):
    start, end = "2026-11-20T00:00", "2026-11-20T12:00"
    data = get(client, "/api/v1/account/worker-sessions", auth,
               start_date=ms(start), end_date=ms(end))  # fmt: skip
    panel = summaries_selectors.worker_runtime_by_model(
        org=seeded.org, start=at(start), end=at(end)
    )
    assert [(m["model"], m["runtime_seconds"], m["sessions"]) for m in data["models"]] == [
        (row.model, row.runtime.total_seconds(), row.sessions) for row in panel
    ]
    # 8b: w1 5,400 s + w2 clipped to its last hour 3,600 s; 70b: w3 3,600 s.
    assert [(m["model"], m["runtime_seconds"], m["sessions"]) for m in data["models"]] == [
        ("llama-3.1-8b", 9000.0, 2),
        ("llama-3.1-70b", 3600.0, 1),
    ]
    assert data["total_runtime_seconds"] == 12600.0
    assert [(s["id"], s["model"], s["runtime_seconds"]) for s in data["items"]] == [
        ("w2", "llama-3.1-8b", 3600.0),
        ("w1", "llama-3.1-8b", 5400.0),
        ("w3", "llama-3.1-70b", 3600.0),
    ]
    assert data["start_date"] == ms(start) and data["end_date"] == ms(end)
    assert data["count"] == 3 and data["pages"] == 1


def test_queries_per_model_are_the_panels_usage_by_model(client, seeded, auth):
    start, end = "2026-11-19T00:00", "2026-11-21T00:00"
    data = get(client, "/api/v1/account/queries-per-model", auth,
               start_date=ms(start), end_date=ms(end))  # fmt: skip
    panel = panel_selectors.queries_by_model(org=seeded.org, start=at(start), end=at(end))
    rows = [
        (i["model"], i["queries"], i["input_tokens"], i["output_tokens"], i["total_tokens"],
         Decimal(i["credits"]))
        for i in data["items"]
    ]  # fmt: skip
    assert rows == [
        (p.model, p.queries, p.input_tokens, p.output_tokens, p.total_tokens, p.credits)
        for p in panel
    ]
    assert rows == [
        ("llama-3.1-70b", 1, 1000, 500, 1500, Decimal("0.00135")),
        ("llama-3.1-8b", 1, 25, 100, 125, Decimal("0.0000125")),
    ]
    assert data["total_queries"] == 2 and data["total_tokens"] == 1625
    assert Decimal(data["total_credits"]) == Decimal("0.0013625")


def test_month_to_date_is_the_panels_token_card_in_the_orgs_time_zone(client, seeded, auth):
    data = get(client, "/api/v1/usage", auth)
    card = panel_selectors.tokens_month_to_date(org=seeded.org, now=NOW, tz="Europe/Berlin")
    # November in Berlin: q1, q2, q3 and q5 (q4 is 31 October there).
    assert data["total_tokens"] == card.used == 125 + 1500 + 500 + 20
    assert data["prompt_tokens"] == 25 + 1000 + 200 + 10
    assert data["completion_tokens"] == 100 + 500 + 300 + 10
    assert data["allocation"] == card.allocation == 25_000_000
    assert data["remaining"] == 25_000_000 - 2145
    assert data["percent_used"] == pytest.approx(100 * 2145 / 25_000_000)
    assert data["month_start"] == "2026-10-31T23:00:00Z"
    assert data["overage_allowed"] is True and data["tier"] == "startup"
    assert Decimal(data["cost"]) == Decimal("0.0000125") + Decimal("0.00135") + Decimal(
        "0.00005"
    ) + Decimal("0.000002")
    by_model = panel_selectors.queries_by_model(
        org=seeded.org, start=card.month_start, end=NOW + timedelta(days=1)
    )
    assert [(m["model"], m["total_tokens"], Decimal(m["cost"])) for m in data["models"]] == [
        (p.model, p.total_tokens, p.credits) for p in by_model
    ]
    assert [(m["model"], m["prompt_tokens"], m["completion_tokens"]) for m in data["models"]] == [
        ("llama-3.1-70b", 1000, 500),
        ("llama-3.1-8b", 235, 410),
    ]


def test_list_llm_defaults_to_this_month_until_the_end_of_today(client, seeded, auth):
    data = get(client, "/api/v1/usage/llm", auth)
    assert data["start_date"] == "2026-10-31T23:00:00Z"  # 1 Nov 00:00 in Berlin
    assert data["end_date"] == "2026-11-20T23:00:00Z"  # 21 Nov 00:00 in Berlin
    assert [item["run_id"] for item in data["items"]] == ["q1", "q2", "q3", "q5"]
    first = data["items"][0]
    q1 = seeded.queries["q1"]
    assert first == {
        "id": q1.pk,
        "run_id": "q1",
        "job_id": None,
        "user_id": seeded.ana.pk,
        "organization_id": seeded.org.pk,
        "run_created_at": "2026-11-20T10:00:00Z",
        "run_time": 0,
        "credits": "0.0000125",
        "input_tokens": 25,
        "output_tokens": 100,
        "model_id": "llama-3.1-8b",
        "total_tokens": 125,
        "endpoint": "/v1/chat/completions",
        "member": "ana@example.com",
    }
    assert get(client, f"/api/v1/usage/llm/{q1.pk}", auth) == first


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"start_date": "2026-11-19", "end_date": "2026-11-19"}, ["q2"]),
        ({"start_date": "2026-11-19T09:00:00Z"}, ["q1", "q2"]),
        ({"end_date": "2026-11-05"}, ["q3", "q5", "q4"]),
        ({"start_date": "2026-10-01", "end_date": "2026-10-31"}, ["q4"]),
    ],
)
def test_list_llm_date_ranges(client, seeded, auth, params, expected):
    data = get(client, "/api/v1/usage/llm", auth, **params)
    assert [item["run_id"] for item in data["items"]] == expected


def test_llm_summary_is_the_panels_credits(client, seeded, auth):
    url = f"/api/v1/usage/llm/organization/{seeded.org.pk}/summary"
    data = get(client, url, auth)
    panel = panel_selectors.queries_by_model(
        org=seeded.org, start=at("2026-10-31T23:00"), end=at("2026-11-20T23:00")
    )
    assert Decimal(data["credits"]) == sum((p.credits for p in panel), Decimal(0))
    assert Decimal(data["credits"]) == Decimal("0.0014145")
    assert (data["queries"], data["total_tokens"]) == (4, 2145)
    last_month = get(client, url, auth, start_date="2026-10-01", end_date="2026-10-31")
    assert Decimal(last_month["credits"]) == Decimal("0.0000014")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["m1", "m2", "m3"]),
        ({"task": "IDR"}, ["m1", "m3"]),
        ({"task": "CDM"}, ["m2"]),
        ({"task": "IDR", "start_date": "2026-11-10"}, ["m1"]),
    ],
)
def test_list_matching_by_task(client, seeded, auth, params, expected):
    data = get(client, "/api/v1/usage/matching", auth, **params)
    assert [item["run_id"] for item in data["items"]] == expected
    if params == {}:
        m1 = data["items"][0]
        assert m1["num_records"] == 5000 and m1["run_time"] == 120 and m1["task"] == "IDR"
        assert m1["organization_id"] == seeded.org.pk


def test_lists_are_paged(client, seeded, auth):
    pages = [get(client, "/api/v1/usage/llm", auth, page=n, page_size=3) for n in (1, 2)]
    assert [p["count"] for p in pages] == [4, 4] and pages[0]["pages"] == 2
    assert (pages[0]["next_page"], pages[0]["previous_page"]) == (2, None)
    assert (pages[1]["next_page"], pages[1]["previous_page"]) == (None, 1)
    assert [i["run_id"] for p in pages for i in p["items"]] == ["q1", "q2", "q3", "q5"]
