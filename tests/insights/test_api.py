"""The write API: auth, the batch endpoint, rate limits, allocation, jobs and heartbeats."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.models import Tier
from accounts.services import apikey_revoke
from billing.models import LedgerEntry
from billing.selectors import credit_balance
from tests.conftest import NOW
from tests.factories import grant_credits, make_api_key, make_controller, make_org
from usage.models import Job, Query

pytestmark = [pytest.mark.django_db]

URL = "/api/v1/usage/records"
RPM_HEADERS = ("X-RateLimit-Limit-RPM", "X-RateLimit-Remaining-RPM", "X-RateLimit-Reset-RPM")
TPM_HEADERS = ("X-RateLimit-Limit-TPM", "X-RateLimit-Remaining-TPM", "X-RateLimit-Reset-TPM")


def post(client, secret, body, url=URL):
    return client.post(
        url,
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"} if secret else {},
    )


def query(n: int, tokens: int = 100, **extra) -> dict:
    return {
        "id": f"q-{n}",
        "kind": "query",
        "occurred_at": "2026-11-20T10:00:00Z",
        "model": "llama-3.1-8b",
        "input_tokens": tokens,
        "output_tokens": 0,
        **extra,
    }


@pytest.fixture
def org():
    org = make_org(tier=Tier.STARTUP)
    grant_credits(org=org, amount="50")
    return org


@pytest.fixture
def key(org):
    return make_api_key(org=org)


def test_a_batch_answers_accepted_duplicates_rejected_with_rate_limit_headers(client, key, frozen):
    api_key, secret = key
    body = {"records": [query(1), query(2), query(3, model="nope")]}
    response = post(client, secret, body)
    assert response.status_code == 200
    data = response.json()
    assert data["accepted"] == ["q-1", "q-2"]
    assert data["duplicates"] == []
    assert data["rejected"] == [
        {"index": 2, "id": "q-3", "field": "model", "error": data["rejected"][0]["error"]}
    ]
    assert Decimal(data["credits"]) == Decimal("200") * Decimal("0.10") / 10**6
    for header in RPM_HEADERS + TPM_HEADERS:
        assert response.has_header(header), header
    again = post(client, secret, body).json()
    assert again["accepted"] == [] and again["duplicates"] == ["q-1", "q-2"]
    api_key.refresh_from_db()
    assert api_key.last_used_at == NOW


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer sk-av-nothing-like-a-real-key", "Basic abc", "Token sk-av-x"],
)
def test_unknown_or_missing_keys_get_401_json(client, org, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.post(URL, data="{}", content_type="application/json", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_api_key"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_gets_401(client, key):
    api_key, secret = key
    assert post(client, secret, {"records": []}).status_code == 200
    apikey_revoke(key=api_key)
    response = post(client, secret, {"records": [query(1)]})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_api_key"  # the same answer as an unknown key
    assert not Query.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, "invalid_json"),
        (json.dumps({"rows": []}), 400, "invalid_batch"),
        (json.dumps([1, 2]), 400, "invalid_batch"),
        (json.dumps({"records": [query(n) for n in range(1001)]}), 400, "too_many_records"),
    ],
)
def test_malformed_batches_are_400_and_write_nothing(client, key, body, status, code):
    _, secret = key
    response = client.post(
        URL,
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == status
    assert response.json()["error"] == code
    assert response.has_header("X-RateLimit-Remaining-RPM")
    assert not Query.objects.exists()


def test_wrong_method_is_405(client, key):
    _, secret = key
    response = client.get(URL, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 405


AUTHORIZE = "/api/v1/usage/authorize"


def authorize(client, secret, tokens: int = 100):
    body = {"model": "llama-3.1-8b", "input_tokens": tokens, "max_output_tokens": 0}
    return post(client, secret, body, url=AUTHORIZE)


# Spend controls: RPM and TPM are enforced by authorize; ingestion records what
# happened and keeps only a per-key ceiling that protects the console.


def test_ingestion_is_never_refused_for_rpm_only_past_the_consoles_ceiling(
    client, org, frozen, settings
):
    settings.INGEST_CEILING_PER_MINUTE = 0  # the ceiling is then ten times the key's RPM
    api_key, secret = make_api_key(org=org)
    api_key.rate_limit_rpm = 1
    api_key.save()
    answers = [post(client, secret, {"records": [query(n)]}).status_code for n in range(11)]
    assert answers == [200] * 10 + [429]
    assert Query.objects.count() == 10
    from spend.models import RateLimitRefusal

    assert list(RateLimitRefusal.objects.values_list("api_key", "count")) == [(api_key.pk, 1)]


def test_request_limit_counts_down_refuses_with_retry_after_and_resets(client, org, frozen):
    api_key, secret = make_api_key(org=org)
    api_key.rate_limit_rpm = 3
    api_key.save()
    window_end = int(NOW.timestamp()) // 60 * 60 + 60
    remaining = []
    for _ in range(3):
        response = authorize(client, secret)
        assert response.status_code == 200
        assert response["X-RateLimit-Limit-RPM"] == "3"
        assert response["X-RateLimit-Reset-RPM"] == str(window_end)
        remaining.append(int(response["X-RateLimit-Remaining-RPM"]))
    assert remaining == [2, 1, 0]

    frozen.shift(timedelta(seconds=15))
    refused = authorize(client, secret)
    assert refused.status_code == 429
    data = refused.json()
    assert (data["allowed"], data["reason"], data["limit"]) == (False, "rate_limit_requests", 3)
    assert data["retry_after"] == window_end - int(NOW.timestamp()) - 15
    assert refused["Retry-After"] == str(window_end - int(NOW.timestamp()) - 15)
    assert refused["X-RateLimit-Remaining-RPM"] == "0"

    frozen.shift(timedelta(seconds=60))  # the next window
    response = authorize(client, secret)
    assert response.status_code == 200
    assert response["X-RateLimit-Remaining-RPM"] == "2"
    assert response["X-RateLimit-Reset-RPM"] == str(window_end + 60)


def test_token_limit_counts_authorized_tokens_and_resets(client, org, frozen):
    api_key, secret = make_api_key(org=org)
    api_key.rate_limit_tpm = 1000
    api_key.save()
    first = authorize(client, secret, tokens=600)
    assert first["X-RateLimit-Limit-TPM"] == "1000"
    assert first["X-RateLimit-Remaining-TPM"] == "400"
    refused = authorize(client, secret, tokens=600)  # would pass the limit: refused
    assert refused.status_code == 429 and refused.json()["reason"] == "rate_limit_tokens"
    assert refused.json()["limit"] == 1000 and int(refused["Retry-After"]) >= 1
    assert authorize(client, secret, tokens=400).status_code == 200  # exactly the limit
    # Ingestion does not count tokens any more, and is not refused for them.
    assert post(client, secret, {"records": [query(1, tokens=5000)]}).status_code == 200
    frozen.shift(timedelta(minutes=1))
    fourth = authorize(client, secret, tokens=100)
    assert fourth.status_code == 200
    assert fourth["X-RateLimit-Remaining-TPM"] == "900"


def test_limits_are_per_key(client, org):
    a, secret_a = make_api_key(org=org)
    _, secret_b = make_api_key(org=org)
    a.rate_limit_rpm = 1
    a.save()
    assert authorize(client, secret_a).status_code == 200
    assert authorize(client, secret_a).status_code == 429
    assert authorize(client, secret_b).status_code == 200


def test_a_free_organization_is_refused_by_authorize_at_its_allocation(client, frozen):
    org = make_org(tier=Tier.FREE)
    grant_credits(org=org, amount="5")
    api_key, secret = make_api_key(org=org)
    api_key.rate_limit_tpm = 10**9  # the allocation, not the per-minute limit, is under test
    api_key.save()
    ok = post(client, secret, {"records": [query(n, tokens=25_000) for n in range(4)]})
    assert ok.status_code == 200 and len(ok.json()["accepted"]) == 4  # 100,000: the allocation
    over = authorize(client, secret, tokens=1)
    assert over.status_code == 402
    data = over.json()
    assert (data["reason"], data["limit"]) == ("allocation_exhausted", 100_000)
    # Retry when the month resets: 1 December 00:00 UTC.
    assert data["retry_after"] == 11 * 24 * 3600 - 12 * 3600
    # A record past it without a reservation is still stored (charged nothing past it).
    late = post(client, secret, {"records": [query(9, tokens=1)]})
    assert late.status_code == 200 and late.json()["accepted"] == ["q-9"]
    assert Query.objects.get(client_id="q-9").credits == 0


# Jobs ----------------------------------------------------------------------------------


def test_job_lifecycle_through_the_jobs_endpoints(client, org, key, frozen):
    _, secret = key
    make_controller(org=org, name="dgx-01")
    created = post(
        client, secret, {"id": "j-1", "cores": 8, "controller": "dgx-01"}, "/api/v1/jobs"
    )
    assert created.status_code == 201
    assert created.json()["status"] == "submitted" and created.json()["compute"] == "controller"
    replay = post(client, secret, {"id": "j-1", "cores": 8, "controller": "dgx-01"}, "/api/v1/jobs")
    assert replay.status_code == 200

    running = post(client, secret, {"status": "running"}, "/api/v1/jobs/j-1/transition")
    assert running.status_code == 200 and running.json()["started_at"] == "2026-11-20T12:00:00Z"
    frozen.shift(timedelta(minutes=90))
    done = post(client, secret, {"status": "completed"}, "/api/v1/jobs/j-1/transition")
    assert done.status_code == 200
    # 8 cores × 1.5 h = 12 core-hours on a controller at 0.03
    assert done.json()["core_hours"] == "12" and done.json()["credits"] == "0.36"
    job = Job.objects.get(client_id="j-1")
    entry = LedgerEntry.objects.get(organization=org, kind="usage")
    assert entry.amount == Decimal("-0.36") and entry.idempotency_key == f"job:{job.pk}"
    assert credit_balance(org=org) == Decimal("50") - Decimal("0.36")

    illegal = post(client, secret, {"status": "running"}, "/api/v1/jobs/j-1/transition")
    assert illegal.status_code == 409
    assert illegal.json()["error"] == "illegal_transition"
    assert illegal.json()["job"]["status"] == "completed"
    assert (
        client.get("/api/v1/jobs/j-1", headers={"Authorization": f"Bearer {secret}"}).json()[
            "status"
        ]
        == "completed"
    )
    assert credit_balance(org=org) == Decimal("50") - Decimal("0.36")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (["completed"], 409),  # a submitted job must start before it completes
        (["running", "running"], 409),
        (["cancelled", "running"], 409),
        (["running", "failed", "cancelled"], 409),
        (["paused"], 400),
    ],
)
def test_illegal_transitions_are_409_with_the_current_state(client, key, path, expected, frozen):
    _, secret = key
    post(client, secret, {"id": "j-2", "cores": 1}, "/api/v1/jobs")
    responses = [post(client, secret, {"status": s}, "/api/v1/jobs/j-2/transition") for s in path]
    assert responses[-1].status_code == expected
    if expected == 409:
        assert responses[-1].json()["job"]["status"] == Job.objects.get(client_id="j-2").status


def test_another_organizations_job_is_404(client, key):
    other = make_org()
    _, other_secret = make_api_key(org=other)
    post(client, other_secret, {"id": "theirs", "cores": 1}, "/api/v1/jobs")
    _, secret = key
    moved = post(client, secret, {"status": "running"}, "/api/v1/jobs/theirs/transition")
    assert moved.status_code == 404
    seen = client.get("/api/v1/jobs/theirs", headers={"Authorization": f"Bearer {secret}"})
    assert seen.status_code == 404


def test_submitting_an_invalid_job_is_400_with_the_field(client, key):
    _, secret = key
    response = post(client, secret, {"id": "j", "cores": -1}, "/api/v1/jobs")
    assert response.status_code == 400 and response.json()["field"] == "cores"


def test_ending_a_job_the_balance_cannot_pay_is_402_and_changes_nothing(client, frozen):
    org = make_org(tier=Tier.STARTUP)
    _, secret = make_api_key(org=org)
    post(client, secret, {"id": "j", "cores": 64}, "/api/v1/jobs")
    post(client, secret, {"status": "running"}, "/api/v1/jobs/j/transition")
    frozen.shift(timedelta(hours=2))
    response = post(client, secret, {"status": "completed"}, "/api/v1/jobs/j/transition")
    assert response.status_code == 402 and response.json()["field"] == "credits"
    assert Job.objects.get(client_id="j").status == "running"
    assert not LedgerEntry.objects.filter(organization=org).exists()


# Controllers -----------------------------------------------------------------------------


def test_a_controller_heartbeat_with_its_token_makes_it_online(client, org, frozen):
    controller, token = make_controller(org=org, name="dgx-01", cores=64, memory_gb=256)
    assert not controller.online
    response = post(client, token, {"cores": 96}, "/api/v1/controllers/heartbeat")
    assert response.status_code == 200
    assert response.json() == {
        "name": "dgx-01",
        "online": True,
        "cores": 96,
        "memory_gb": 256,
        "last_heartbeat_at": "2026-11-20T12:00:00Z",
    }
    controller.refresh_from_db()
    assert controller.online
    frozen.shift(timedelta(minutes=6))
    assert not controller.online  # no heartbeat for longer than the online window


def test_heartbeat_with_an_api_key_or_bad_token_is_401(client, org, key):
    _, secret = key
    assert post(client, secret, {}, "/api/v1/controllers/heartbeat").status_code == 401
    assert post(client, "ctl-nope", {}, "/api/v1/controllers/heartbeat").status_code == 401
