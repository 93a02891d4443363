"""Redis restarted during ingestion: rate limiting fails open and says so, nothing is lost.

The real test starts a private redis-server (never the shared one), points the cache at
it, ingests, kills it (also once in the middle of a request), ingests, restarts it and
ingests again: every batch is stored, the requests served while Redis was away carry
`X-RateLimit-Status: unavailable` and log "usage.ratelimit.unavailable", and counting
resumes once Redis is back. A unit test does the same with a cache that raises.
"""

import json
import logging
import shutil
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from spend import counters, ratelimit
from spend.ratelimit import DEFAULT_RATE_LIMITS
from tests.factories import grant_credits, make_api_key, make_org
from tests.reliability.faults import fault_injected, fault_summary, timed  # noqa: F401
from tests.workers import PrivateRedis, free_port
from usage.models import Query

pytestmark = pytest.mark.django_db

UNAVAILABLE = "usage.ratelimit.unavailable"
# Five seconds into a minute: the test's requests share one rate-limit window.
NOW = datetime(2026, 11, 21, 12, 0, 5, tzinfo=UTC)


def _batch(prefix: str, n: int = 3) -> dict:
    at = (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    return {
        "records": [
            {
                "id": f"{prefix}-{i}",
                "kind": "query",
                "occurred_at": at,
                "model": "llama-3.1-8b",
                "input_tokens": 100,
                "output_tokens": 50,
            }
            for i in range(n)
        ]
    }


def _post(client, secret: str, body: dict):
    return client.post(
        "/api/v1/usage/records",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )


def _warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == UNAVAILABLE]


def _metered(response, *, rpm_used: int, tpm_used: int, org_tier: str) -> None:
    rpm, tpm = DEFAULT_RATE_LIMITS[org_tier]
    # Spend controls: ingestion counts only against the console's ceiling (ten
    # times the RPM, at least 6,000) and no longer counts tokens (authorize does).
    rpm, tpm_used = max(10 * rpm, 6000), 0
    assert "X-RateLimit-Status" not in response
    assert response["X-RateLimit-Remaining-RPM"] == str(rpm - rpm_used)
    assert response["X-RateLimit-Remaining-TPM"] == str(tpm - tpm_used)


def _unmetered(response) -> None:
    assert response["X-RateLimit-Status"] == "unavailable"
    # No counts rather than made-up ones.
    assert not [h for h in response.headers if h.startswith("X-RateLimit-Remaining")]


@pytest.fixture
def api_org():
    org = make_org()
    grant_credits(org=org, amount="100")
    _, secret = make_api_key(org=org)
    return org, secret


class _UnreachableCache:
    """What the cache does when Redis has gone away."""

    def __getattr__(self, name):
        def refuse(*args, **kwargs):
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

        return refuse


def test_an_unreachable_cache_serves_the_batch_unmetered_and_says_so(
    api_org, client, caplog, monkeypatch
):
    org, secret = api_org
    with time_machine.travel(NOW, tick=True):
        assert _post(client, secret, _batch("a")).status_code == 200
        monkeypatch.setattr(ratelimit, "cache", _UnreachableCache())
        monkeypatch.setattr(counters, "client", _UnreachableCache)
        fault_injected("cache unreachable (patched)")
        response = _post(client, secret, _batch("b"))
        assert response.status_code == 200, response.content
        assert len(response.json()["accepted"]) == 3
        _unmetered(response)
        (warning,) = _warnings(caplog)
        assert warning.levelno == logging.WARNING and "Connection refused" in warning.error
        assert ratelimit.ratelimit_live_counts(key_ids=[1, 2]) == {1: (0, 0), 2: (0, 0)}
        monkeypatch.undo()
        # Back: the counters carry on from before the outage (this cache kept them).
        _metered(
            _post(client, secret, _batch("c")), rpm_used=2, tpm_used=2 * 450, org_tier=org.tier
        )
    assert Query.objects.filter(organization=org).count() == 9


@pytest.fixture
def private_redis(settings):
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server program")
    server = PrivateRedis(free_port())
    server.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{server.port}/0",
            "KEY_PREFIX": "reliability",
        }
    }
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()


def test_redis_restarted_during_ingestion_fails_open_and_recovers(
    api_org, client, caplog, private_redis, monkeypatch
):
    from ingest.api import ingest as usage_api

    org, secret = api_org
    with time_machine.travel(NOW, tick=True):
        # 1. Redis up: metered.
        with timed("ingest, Redis up"):
            first = _post(client, secret, _batch("up"))
        assert first.status_code == 200
        _metered(first, rpm_used=1, tpm_used=450, org_tier=org.tier)

        # 2. Redis killed: served, unmetered, warned.
        private_redis.kill()
        fault_injected("redis killed")
        with timed("ingest, Redis down"):
            down = _post(client, secret, _batch("down"))
        assert down.status_code == 200, down.content
        assert down.json()["accepted"] == ["down-0", "down-1", "down-2"]
        _unmetered(down)
        assert len(_warnings(caplog)) == 1

        # 3. Restarted (empty: nothing was persisted): counting starts again.
        private_redis.start()
        with timed("ingest, Redis back"):
            back = _post(client, secret, _batch("back"))
        assert back.status_code == 200
        _metered(back, rpm_used=1, tpm_used=450, org_tier=org.tier)

        # 4. Killed in the middle of a request (after it was counted): the batch is stored;
        #    ingestion counts no tokens after the fact any more (spend controls), so the
        #    answer carries the count taken before the kill.
        real_ingest = usage_api.usage_records_ingest

        def ingest_then_lose_redis(**kwargs):
            result = real_ingest(**kwargs)
            private_redis.kill()
            fault_injected("redis killed")
            return result

        monkeypatch.setattr(usage_api, "usage_records_ingest", ingest_then_lose_redis)
        mid = _post(client, secret, _batch("mid"))
        assert mid.status_code == 200 and len(mid.json()["accepted"]) == 3
        _metered(mid, rpm_used=2, tpm_used=0, org_tier=org.tier)
        assert len(_warnings(caplog)) == 1
        monkeypatch.undo()

        # 5. Back again.
        private_redis.start()
        settle = _post(client, secret, _batch("again"))
        assert settle.status_code == 200
        _metered(settle, rpm_used=1, tpm_used=450, org_tier=org.tier)
        assert len(_warnings(caplog)) == 1

    # Nothing lost: every batch stored once, and charged once.
    stored = Query.objects.filter(organization=org)
    assert stored.count() == 15
    assert {q.split("-")[0] for q in stored.values_list("client_id", flat=True)} == {
        "up",
        "down",
        "back",
        "mid",
        "again",
    }
    from billing.models import LedgerEntry

    assert LedgerEntry.objects.filter(organization=org, kind="usage").count() == 5


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_as_cache_and_broker_a_batch_is_still_stored_and_answered(
    api_org, client, caplog, monkeypatch
):
    """In production Redis is the broker too: the post-batch alert evaluation cannot be
    queued (its debounce key is in the cache). The batch is stored and answered anyway;
    the failure is logged and the beat's next evaluation catches up."""
    import django.core.cache

    from console.celery import app

    org, secret = api_org
    monkeypatch.setattr(ratelimit, "cache", _UnreachableCache())
    monkeypatch.setattr(counters, "client", _UnreachableCache)
    monkeypatch.setattr(django.core.cache, "cache", _UnreachableCache())
    fault_injected("cache and broker unreachable (patched)")
    app.conf.task_always_eager = False  # as in production: the evaluation goes to the broker
    try:
        with time_machine.travel(NOW, tick=True):
            response = _post(client, secret, _batch("x"))
    finally:
        app.conf.task_always_eager = True
    assert response.status_code == 200, response.content
    assert len(response.json()["accepted"]) == 3
    _unmetered(response)
    assert Query.objects.filter(organization=org).count() == 3
    assert [r for r in caplog.records if "on_commit" in r.getMessage()]
