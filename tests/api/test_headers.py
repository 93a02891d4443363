"""Rate-limit headers on every answer; 429 with Retry-After, the refusal recorded."""

from datetime import timedelta

import pytest

from accounts.selectors import apikey_for_secret
from spend.models import RateLimitRefusal
from tests.api.conftest import NOW, RATE_HEADERS, bearer

pytestmark = pytest.mark.django_db

READS = [
    ("GET", "/api/v1/account", 200),
    ("GET", "/api/v1/account/credits", 200),
    ("GET", "/api/v1/account/worker-sessions?start_date=0&end_date=1", 200),
    ("GET", "/api/v1/account/queries-per-model?start_date=0&end_date=1", 200),
    ("GET", "/api/v1/usage", 200),
    ("GET", "/api/v1/usage/llm", 200),
    ("GET", "/api/v1/usage/llm/999999", 404),
    ("GET", "/api/v1/usage/llm/organization/{org}/summary", 200),
    ("GET", "/api/v1/usage/llm/organization/999999/summary", 404),
    ("GET", "/api/v1/usage/matching", 200),
    ("GET", "/api/v1/usage/matching?task=nope", 400),
    ("GET", "/api/v1/usage/llm?page=7", 400),
    ("POST", "/api/v1/account/credits", 400),
]


@pytest.mark.parametrize("credential", ["key_secret", "token_secret"])
@pytest.mark.parametrize(("method", "url", "status"), READS)
def test_every_answer_carries_the_rate_limit_headers(
    client, seeded, credential, method, url, status
):
    url = url.format(org=seeded.org.pk)
    headers = bearer(getattr(seeded, credential))
    if method == "GET":
        response = client.get(url, headers=headers)
    else:
        response = client.post(url, "{}", content_type="application/json", headers=headers)
    assert response.status_code == status, response.content
    for header in RATE_HEADERS:
        assert response.has_header(header), header
    window_end = int(NOW.timestamp()) // 60 * 60 + 60
    assert response["X-RateLimit-Reset-RPM"] == str(window_end)
    assert response["X-RateLimit-Limit-RPM"] == "3000"  # the startup tier


def test_write_endpoints_keep_their_headers_too(client, seeded):
    headers = bearer(seeded.key_secret)
    for response in [
        client.post("/api/v1/usage/records", {"records": []}, content_type="application/json",
                    headers=headers),
        client.post("/api/v1/jobs", {"id": "j", "cores": 0}, content_type="application/json",
                    headers=headers),
        client.get("/api/v1/jobs/none", headers=headers),
    ]:  # fmt: skip
        assert all(response.has_header(h) for h in RATE_HEADERS), response.status_code


def test_reads_and_writes_share_an_api_keys_limit_and_refusals_are_recorded(client, seeded):
    key = apikey_for_secret(secret=seeded.key_secret)
    key.rate_limit_rpm = 2
    key.save()
    headers = bearer(seeded.key_secret)
    assert client.get("/api/v1/usage", headers=headers)["X-RateLimit-Remaining-RPM"] == "1"
    # Spend controls: ingestion counts against the console's own ceiling, not the RPM.
    ok = client.post("/api/v1/usage/records", {"records": []}, content_type="application/json",
                     headers=headers)  # fmt: skip
    assert ok.status_code == 200 and ok["X-RateLimit-Limit-RPM"] == "6000"
    assert client.get("/api/v1/usage", headers=headers)["X-RateLimit-Remaining-RPM"] == "0"
    refused = client.get("/api/v1/usage/llm", headers=headers)
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert refused["Retry-After"] == "60"
    assert refused["X-RateLimit-Remaining-RPM"] == "0"
    assert list(RateLimitRefusal.objects.values_list("api_key", "count")) == [(key.pk, 1)]


def test_a_session_token_has_its_own_limit_at_its_tiers_rate(client, seeded, settings, frozen):
    settings.USAGE_RATE_LIMITS = {"startup": (2, 1000)}
    headers = bearer(seeded.token_secret)
    assert [client.get("/api/v1/usage", headers=headers).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    # The API key of the same organization counts on its own.
    assert client.get("/api/v1/usage", headers=bearer(seeded.key_secret)).status_code == 200
    frozen.shift(timedelta(minutes=1))
    assert client.get("/api/v1/usage", headers=headers).status_code == 200
