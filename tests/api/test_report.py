"""GET /api/v1/usage/report: the explorer's figures through the API (explorer_seeded in
tests/insights/explorer_seed.py, figures added up by hand there and here)."""

import pytest

from tests.factories import make_api_key, make_controller, make_org
from tests.insights.explorer_seed import END, START

pytestmark = pytest.mark.django_db

URL = "/api/v1/usage/report"


@pytest.fixture
def auth(explorer_seeded):
    _key, secret = make_api_key(org=explorer_seeded["org"], name="Reader")
    return {"Authorization": f"Bearer {secret}"}


def _get(client, auth, params):
    return client.get(URL, params, headers=auth)


def _iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def test_credits_by_kind_per_day_with_the_previous_period(client, explorer_seeded, auth):
    response = _get(
        client,
        auth,
        {"start": _iso(START), "end": _iso(END), "metric": "credits", "group_by": "kind"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["time_zone"] == "America/New_York"
    assert body["total"] == "6.38" and body["previous_total"] == "2"
    assert body["change_percent"] == "219.0"
    groups = {g["group"]["kind"]: g for g in body["groups"]}
    assert groups["query"]["value"] == "4.6"
    assert groups["job"]["value"] == "0.78"
    assert groups["worker_session"]["value"] == "1"
    # Local times: New York's midnights, EDT then EST.
    assert [b["start"] for b in body["buckets"]] == [
        "2026-10-31T12:45:00-04:00",
        "2026-11-01T00:00:00-04:00",
        "2026-11-02T00:00:00-05:00",
    ]
    per_day = [{v["group"]["kind"]: v["value"] for v in b["values"]} for b in body["buckets"]]
    assert per_day[1] == {"query": "3", "job": "0.3", "worker_session": "0"}
    assert "X-RateLimit-Limit-RPM" in response.headers


def test_filters_name_models_keys_and_controllers(client, explorer_seeded, auth):
    params = {
        "start": _iso(START),
        "end": _iso(END),
        "metric": "credits",
        "group_by": ["model", "kind"],
        "filter[api_key]": [explorer_seeded["a"].pk],
    }
    body = _get(client, auth, params).json()
    got = {(g["group"]["model"], g["group"]["kind"]): g["value"] for g in body["groups"]}
    # Key Alpha: queries 1.50 + 0.10 (8b), its worker 1.00 (8b), its job 0.30 (no model).
    assert got == {
        ("llama-3.1-8b", "query"): "1.6",
        ("llama-3.1-8b", "worker_session"): "1",
        ("—", "job"): "0.3",
    }
    params = {**params, "filter[model]": ["llama-3.1-70b"], "filter[api_key]": []}
    body = _get(client, auth, params).json()
    assert body["total"] == "2.25"
    params = {
        "start": _iso(START),
        "end": _iso(END),
        "metric": "jobs",
        "filter[controller]": [explorer_seeded["dgx"].pk],
    }
    assert _get(client, auth, params).json()["total"] == "1"


def test_tokens_by_member_in_hours_are_integers(client, explorer_seeded, auth):
    params = {
        "start": "2026-11-01T00:15",  # local: the report's zone
        "end": "2026-11-01T03:00",
        "metric": "tokens",
        "bucket": "1h",
    }
    body = _get(client, auth, params).json()
    assert len(body["buckets"]) == 4
    assert [b["values"][0]["value"] for b in body["buckets"]] == ["0", "220", "55", "0"]


def test_buckets_are_paged(client, explorer_seeded, auth):
    params = {"start": _iso(START), "end": _iso(END), "page_size": 2, "page": 2}
    body = _get(client, auth, params).json()
    assert body["count"] == 3 and body["pages"] == 2 and body["page"] == 2
    assert [b["start"] for b in body["buckets"]] == ["2026-11-02T00:00:00-05:00"]
    assert body["total"] == "6.38"  # totals are the whole range's, whatever the page


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"end": "2026-10-01"}, "end"),
        ({"group_by": "team"}, "group_by"),
        ({"bucket": "1h", "start": "2026-09-01"}, "bucket"),
        ({"bucket": "5m"}, "bucket"),
        ({"metric": "dollars"}, "metric"),
        ({"filter[model]": "gpt-9"}, "filter[model]"),
        ({"filter[api_key]": "abc"}, "filter[api_key]"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(client, explorer_seeded, auth, params, field):
    query = {"start": _iso(START), "end": _iso(END), **params}
    response = _get(client, auth, query)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field


def test_another_organizations_key_or_controller_is_a_400_and_shows_nothing(
    client, explorer_seeded, auth
):
    other = make_org()
    their_key, _secret = make_api_key(org=other)
    their_controller, _token = make_controller(org=other)
    for name, value in (
        ("filter[api_key]", their_key.pk),
        ("filter[controller]", their_controller.pk),
    ):
        response = _get(client, auth, {"start": _iso(START), "end": _iso(END), name: value})
        assert response.status_code == 400
        assert response.json()["field"] == name
    # Their usage never shows up in ours, and ours never in theirs.
    _mine, their_secret = make_api_key(org=other)
    body = client.get(
        URL,
        {"start": _iso(START), "end": _iso(END)},
        headers={"Authorization": f"Bearer {their_secret}"},
    ).json()
    assert body["total"] == "0" and body["groups"] == []


def test_the_report_is_in_the_schema(client):
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/usage/report"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"start", "end", "metric", "group_by", "bucket", "time_zone", "filter[model]"} <= names
    assert "filter[project]" in names
    (group_by,) = [p for p in operation["parameters"] if p["name"] == "group_by"]
    assert "project" in str(group_by["schema"])
    # The operation id stays what clients call it.
    assert operation["operationId"] == "usage_api_report_usage_report_view"
