"""Ingestion, jobs and heartbeats refuse what would poison the rollups or the pages:
numbers past bounds that keep every rollup sum in its column, names with control,
bidirectional or zero-width characters, job ids with '/', bodies nested deeper than
32 levels or not declared JSON. A second record for a job in one batch moves it on."""

import json
from datetime import date, timedelta

import pytest
from django.utils import timezone

from accounts.models import Tier
from rollups.models import MatchingDaily
from rollups.services.days import rollup_day
from tests.factories import grant_credits, make_api_key, make_controller, make_org
from usage.limits import MAX_CORE_HOURS, MAX_CORES, MAX_MEMORY_GB, MAX_NUM_RECORDS, MAX_TOKENS
from usage.models import Job, Query

pytestmark = pytest.mark.django_db

RECORDS = "/api/v1/usage/records"
EXTREMES = [2**31, 2**53, 2**63, 10**30]
INVISIBLE = ["\r\n", "\x1b[31m", "\u202e", "\u2066", "\u200b", "\ufeff", "\u2028", "\x07"]


@pytest.fixture
def api(settings):
    settings.USAGE_RATE_LIMITS = {Tier.STARTUP: (10**9, 10**15)}
    org = make_org(tier=Tier.STARTUP)
    grant_credits(org=org, amount="1000000")
    make_controller(org=org, name="dgx-01")
    _key, secret = make_api_key(org=org)
    return {"org": org, "headers": {"Authorization": f"Bearer {secret}"}}


def post(client, api, body, path=RECORDS, content_type="application/json"):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, data, content_type=content_type, headers=api["headers"])


def yesterday_utc() -> str:
    day = timezone.now().date() - timedelta(days=1)
    return f"{day.isoformat()}T10:00:00Z"


def record(kind: str, rid: str, **fields) -> dict:
    at = yesterday_utc()
    base = {
        "query": {"occurred_at": at, "model": "llama-3.1-8b", "input_tokens": 1,
                  "output_tokens": 1, "endpoint": "/v1/chat", "member": "ana@example.com"},
        "worker_session": {"model": "llama-3.1-8b", "started_at": at, "ended_at": at},
        "matching": {"task": "IDR", "num_records": 10, "started_at": at, "ended_at": at},
        "job": {"status": "completed", "cores": 2, "controller": "dgx-01", "submitted_at": at,
                "started_at": at, "ended_at": at, "core_hours": 1},
    }[kind]  # fmt: skip
    return {"id": rid, "kind": kind, **base, **fields}


def test_two_huge_matching_records_no_longer_make_a_day_that_cannot_be_rolled_up(client, api):
    org = api["org"]
    huge = [record("matching", f"m-{n}", num_records=4611686018427387904) for n in range(2)]
    data = post(client, api, {"records": huge}).json()
    assert data["accepted"] == []
    assert {r["field"] for r in data["rejected"]} == {"num_records"}
    # At the bound, the day rolls up (and a million of them would still fit a bigint).
    at_bound = [record("matching", f"b-{n}", num_records=MAX_NUM_RECORDS) for n in range(2)]
    assert len(post(client, api, {"records": at_bound}).json()["accepted"]) == 2
    day = date.fromisoformat(yesterday_utc()[:10])
    rollup_day(org=org, day=day)
    row = MatchingDaily.objects.get(organization=org, day=day, hour__isnull=True)
    assert row.num_records == 2 * MAX_NUM_RECORDS
    assert MAX_NUM_RECORDS * 10**6 < 2**63  # a million runs a day fit the column


@pytest.mark.parametrize("value", EXTREMES)
@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("query", "input_tokens"),
        ("query", "output_tokens"),
        ("matching", "num_records"),
        ("job", "cores"),
        ("job", "core_hours"),
    ],
)
def test_every_numeric_field_refuses_extreme_values_naming_the_field(
    client, api, kind, field, value
):
    data = post(client, api, {"records": [record(kind, "x-1", **{field: value})]}).json()
    assert data["accepted"] == []
    assert data["rejected"][0]["field"] == field
    assert "too large" in data["rejected"][0]["error"]


@pytest.mark.parametrize(
    ("kind", "field", "bound"),
    [
        ("query", "input_tokens", MAX_TOKENS),
        ("matching", "num_records", MAX_NUM_RECORDS),
        ("job", "cores", MAX_CORES),
        ("job", "core_hours", int(MAX_CORE_HOURS)),
    ],
)
def test_the_bound_itself_is_accepted(client, api, kind, field, bound):
    rec = record(kind, "x-1", **{field: bound})
    if field == "cores":  # billed by the hour: a live job, not cores × hours
        rec.update(status="running")
        del rec["ended_at"], rec["core_hours"]
    assert post(client, api, {"records": [rec]}).json()["accepted"] == ["x-1"]


@pytest.mark.parametrize("bad", INVISIBLE)
@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("query", "id"),
        ("query", "model"),
        ("query", "endpoint"),
        ("query", "member"),
        ("job", "controller"),
        ("job", "id"),
        ("matching", "task"),
    ],
)
def test_names_with_control_bidi_or_zero_width_characters_are_refused(
    client, api, kind, field, bad
):
    rec = record(kind, "r-1")
    rec[field] = f"ab{bad}cd" if field != "model" else f"llama-3.1-8b{bad}"
    data = post(client, api, {"records": [rec]}).json()
    assert data["accepted"] == []
    assert data["rejected"][0]["field"] == field
    assert not Query.objects.filter(organization=api["org"]).exists()


def test_a_job_id_with_a_slash_is_refused(client, api):
    data = post(client, api, {"records": [record("job", "a/b")]}).json()
    assert data["rejected"][0]["field"] == "id" and "/" in data["rejected"][0]["error"]
    assert post(client, api, {"id": "c/d", "cores": 1}, "/api/v1/jobs").status_code == 400
    assert not Job.objects.filter(organization=api["org"]).exists()


def test_deeply_nested_json_is_a_400_naming_the_problem_not_a_500(client, api):
    body = '{"records": [' + "[" * 1000 + "]" * 1000 + "]}"
    response = post(client, api, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert "deeper than 32" in response.json()["message"]
    nested_string = {"records": [record("query", "q-s", endpoint="[" * 500)]}
    assert post(client, api, nested_string).json()["rejected"][0]["field"] == "endpoint"


@pytest.mark.parametrize("path", [RECORDS, "/api/v1/jobs", "/api/v1/jobs/j-1/transition"])
def test_a_body_not_declared_json_is_a_415(client, api, path):
    body = json.dumps({"records": [record("query", "q-1")], "id": "j-1", "status": "running"})
    response = post(client, api, body, path, content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert not Query.objects.filter(organization=api["org"]).exists()


def test_a_second_record_for_a_job_in_one_batch_moves_it_forward(client, api):
    at = yesterday_utc()
    running = {"id": "j-1", "kind": "job", "status": "running", "cores": 4,
               "submitted_at": at, "started_at": at}  # fmt: skip
    completed = {"id": "j-1", "kind": "job", "status": "completed", "cores": 4,
                 "started_at": at, "ended_at": at[:-9] + "12:00:00Z"}  # fmt: skip
    data = post(client, api, {"records": [running, completed]}).json()
    assert data["accepted"] == ["j-1"]
    assert data["duplicates"] == [] and data["rejected"] == []
    job = Job.objects.get(organization=api["org"], client_id="j-1")
    assert job.status == "completed"
    assert str(job.core_hours.normalize()) == "8"  # 4 cores × 2 hours, started at 10:00
    # A stale record after it, in a later batch or the same one, changes nothing.
    stale = post(client, api, {"records": [{**running}]}).json()
    assert stale["duplicates"] == ["j-1"]


def test_two_different_ends_for_one_job_in_a_batch_are_a_conflict(client, api):
    first = record("job", "j-2")
    second = {**record("job", "j-2"), "status": "failed"}
    data = post(client, api, {"records": [first, second]}).json()
    assert data["accepted"] == ["j-2"]
    assert data["rejected"][0]["index"] == 1 and data["rejected"][0]["field"] == "status"


@pytest.mark.parametrize("value", EXTREMES)
@pytest.mark.parametrize("field", ["cores", "memory_gb"])
def test_heartbeat_capacity_is_bounded(client, api, field, value):
    _controller, token = make_controller(org=api["org"], name="hb-1")
    response = client.post(
        "/api/v1/controllers/heartbeat",
        json.dumps({field: value}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert field in response.json()["message"]


def test_the_bounds_are_in_the_openapi_schema(client):
    schema = client.get("/api/v1/openapi.json").json()
    text = json.dumps(schema)
    body = schema["paths"]["/api/v1/usage/records"]["post"]["requestBody"]
    props = body["content"]["application/json"]["schema"]["properties"]["records"]["items"][
        "properties"
    ]
    assert props["input_tokens"]["maximum"] == MAX_TOKENS
    assert props["output_tokens"]["maximum"] == MAX_TOKENS
    assert props["num_records"]["maximum"] == MAX_NUM_RECORDS
    assert props["cores"]["maximum"] == MAX_CORES
    assert props["core_hours"]["maximum"] == int(MAX_CORE_HOURS)
    heartbeat = schema["paths"]["/api/v1/controllers/heartbeat"]["post"]["requestBody"]
    hb = heartbeat["content"]["application/json"]["schema"]["properties"]
    assert hb["cores"]["maximum"] == MAX_CORES and hb["memory_gb"]["maximum"] == MAX_MEMORY_GB
    assert "415" in text


def test_controller_and_key_forms_refuse_invisible_characters(client):
    from accounts.forms import APIKeyCreateForm
    from usage.forms import ControllerRegisterForm

    for bad in INVISIBLE:
        form = ControllerRegisterForm({"name": f"dgx{bad}01", "cores": 1, "memory_gb": 1})
        assert not form.is_valid() and "name" in form.errors
        key_form = APIKeyCreateForm({"name": f"la{bad}b", "kind": "workspace"})
        assert not key_form.is_valid() and "name" in key_form.errors
    too_big = ControllerRegisterForm({"name": "dgx", "cores": 2**31, "memory_gb": 2**63})
    assert not too_big.is_valid() and {"cores", "memory_gb"} <= set(too_big.errors)
