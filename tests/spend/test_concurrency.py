"""Authorize and settle from 50 threads on PostgreSQL against one hard cap that allows
exactly 10 requests: exactly 10 allowed, settled spend within the cap, nothing left held
after expiry. With REDIS_URL the decision runs on Redis' counters; the same again across
several keys, members and endpoints, and with Redis restarted or flushed between
authorizations that still hold money. Without the counters (the database's path), Redis
killed mid-run leaves the budgets exact."""

import shutil
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from billing.models import PriceModel
from ingest.services.ingest import usage_records_ingest
from spend.models import Budget, Reservation, SpendHold
from spend.services.authorize import request_authorize
from spend.services.holds import reservations_expire
from tests.factories import grant_credits, make_api_key, make_org
from tests.workers import PrivateRedis, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 50
INPUT, OUTPUT = 1000, 1000  # worst case 2,000 tokens at 0.10 per million: 0.0002
COST = Decimal("0.0002")
UNSETTLED = {0, 1}  # two allowed requests never report: their holds must expire


def _run(org, key, *, midway=None) -> list:
    model = PriceModel.objects.get(name="llama-3.1-8b")
    verdicts: list = [None] * THREADS
    errors: list = []
    barrier = threading.Barrier(THREADS)
    allowed_order: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            barrier.wait()
            if midway is not None and n == THREADS // 2:
                midway()
            verdict = request_authorize(
                key=key, model=model, input_tokens=INPUT, max_output_tokens=OUTPUT
            )
            verdicts[n] = verdict
            if not verdict.allowed:
                return
            with lock:
                allowed_order.append(n)
                rank = len(allowed_order) - 1
            if rank in UNSETTLED:
                return
            record = {
                "id": f"q-{n}",
                "kind": "query",
                "occurred_at": timezone.now().isoformat(),
                "model": "llama-3.1-8b",
                "input_tokens": INPUT,
                "output_tokens": OUTPUT - 10 * (n % 3),  # at most the worst case
                "reservation": verdict.reservation.public_id,
            }
            result = usage_records_ingest(org=org, records=[record], api_key=key)
            assert result.accepted == [f"q-{n}"], result.rejected
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return verdicts


def _check(org, budget, verdicts) -> None:
    allowed = [v for v in verdicts if v.allowed]
    refused = [v for v in verdicts if not v.allowed]
    assert len(allowed) == 10
    assert {v.reason for v in refused} == {"budget_exceeded"}
    assert all(v.status == 402 for v in refused)
    # Settled spend, summed independently from the records: within the cap.
    from usage.models import Query

    settled = sum(Query.objects.filter(organization=org).values_list("credits", flat=True))
    assert settled <= budget.hard_limit
    held = SpendHold.objects.get(organization=org, dimension="o", subject="")
    assert held.credits == 2 * COST  # the two unsettled ones, until they expire
    # Past expiry nothing is left held, and every reservation is settled or expired.
    later = timezone.now() + timedelta(minutes=11)
    assert reservations_expire(org_id=org.pk, now=later) == 2
    assert set(SpendHold.objects.filter(organization=org).values_list("credits", "tokens")) == {
        (Decimal(0), 0)
    }
    assert Reservation.objects.filter(organization=org, status="held").count() == 0
    assert Reservation.objects.filter(organization=org, status="settled").count() == 8


def _setup():
    org = make_org()
    grant_credits(org=org, amount="100")
    key, _ = make_api_key(org=org)
    budget = Budget.objects.create(
        organization=org, scope="api_key", api_key=key, period="day",
        soft_limit=10 * COST, hard_limit=10 * COST,
    )  # fmt: skip
    return org, key, budget


def test_fifty_threads_one_hard_cap_exactly_ten_allowed():
    org, key, budget = _setup()
    _check(org, budget, _run(org, key))


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_the_same_with_redis_restarted_midway_on_the_database_path(settings):
    settings.SPEND_COUNTERS = False
    redis = PrivateRedis(free_port())
    redis.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{redis.port}/0",
        }
    }
    try:
        org, key, budget = _setup()

        def restart() -> None:
            redis.kill()
            time.sleep(0.3)  # the other threads authorize meanwhile, with no cache
            redis.start()

        verdicts = _run(org, key, midway=restart)
        _check(org, budget, verdicts)
        # What the gateway was told while the cache was down: the same exact budget
        # answers, with the rate limits unmetered (X-RateLimit-Status: unavailable).
        blind = [v for v in verdicts if v.rate is not None and not v.rate.available]
        assert all(v.status in (200, 402) for v in blind)
    finally:
        redis.kill()


def _private_redis(settings) -> PrivateRedis:
    redis = PrivateRedis(free_port())
    redis.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{redis.port}/0",
        }
    }
    return redis


def _authorize_many(key_members: list, model, n: int) -> list:
    """n threads at once, thread i on key_members[i % len]: (key, member, endpoint)."""
    verdicts: list = [None] * n
    barrier = threading.Barrier(n)

    def work(i: int) -> None:
        try:
            key, member, endpoint = key_members[i % len(key_members)]
            barrier.wait()
            verdicts[i] = request_authorize(
                key=key, model=model, input_tokens=INPUT, max_output_tokens=OUTPUT,
                member=member, endpoint=endpoint,
            )  # fmt: skip
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return verdicts


def _org_with_an_org_cap():
    from accounts.models import Role
    from tests.factories import make_member, make_user

    org = make_org(allow_overdraft=False)
    grant_credits(org=org, amount="100")
    keys = [make_api_key(org=org, name=f"k{i}")[0] for i in range(3)]
    for email in ("ana@example.com", "bo@example.com"):
        make_member(org=org, user=make_user(email=email), role=Role.MEMBER)
    Budget.objects.create(
        organization=org, scope="organization", period="month",
        soft_limit=10 * COST, hard_limit=10 * COST,
    )  # fmt: skip
    pairs = [
        (keys[i % 3], ("ana@example.com", "bo@example.com", "")[i % 3], f"/v1/e{i % 4}")
        for i in range(12)
    ]
    return org, pairs


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_on_the_counters_fifty_threads_across_keys_members_and_endpoints_allow_ten(settings):
    redis = _private_redis(settings)
    try:
        org, pairs = _org_with_an_org_cap()
        model = PriceModel.objects.get(name="llama-3.1-8b")
        verdicts = _authorize_many(pairs, model, THREADS)
        assert sum(v.allowed for v in verdicts) == 10
        assert {v.reason for v in verdicts if not v.allowed} == {"budget_exceeded"}
        assert Reservation.objects.filter(organization=org, status="held").count() == 10
        # Past expiry, in Redis and in the database: the same cap allows ten again.
        later = timezone.now() + timedelta(minutes=11)
        assert sum(
            request_authorize(
                key=pairs[0][0], model=model, input_tokens=INPUT, max_output_tokens=OUTPUT,
                now=later,
            ).allowed
            for _ in range(11)
        ) == 10  # fmt: skip
        assert Reservation.objects.filter(organization=org, status="expired").count() == 10
    finally:
        redis.kill()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
@pytest.mark.parametrize("lose", ["restart", "flush"])
def test_on_the_counters_losing_redis_frees_no_held_money_and_passes_no_cap(settings, lose):
    redis = _private_redis(settings)
    try:
        org, pairs = _org_with_an_org_cap()
        model = PriceModel.objects.get(name="llama-3.1-8b")
        first = _authorize_many(pairs, model, 6)
        assert all(v.allowed for v in first)
        # Two of the six are settled (at their worst case) before Redis goes.
        for n, verdict in enumerate(first[:2]):
            record = {
                "id": f"q-{n}", "kind": "query", "occurred_at": timezone.now().isoformat(),
                "model": "llama-3.1-8b", "input_tokens": INPUT, "output_tokens": OUTPUT,
                "reservation": verdict.reservation.public_id,
            }  # fmt: skip
            key = pairs[n % len(pairs)][0]
            assert usage_records_ingest(org=org, records=[record], api_key=key).accepted
        if lose == "restart":
            redis.kill()
            down = request_authorize(
                key=pairs[0][0], model=model, input_tokens=INPUT, max_output_tokens=OUTPUT
            )
            assert (down.status, down.reason) == (402, "spend_controls_unavailable")
            redis.start()
        else:
            from spend import counters

            counters.client().flushall()
        # 2 settled + 4 held = 6 of 10: exactly 4 more, whoever asks.
        after = _authorize_many(pairs, model, THREADS)
        assert sum(v.allowed for v in after) == 4
        assert {v.reason for v in after if not v.allowed} == {"budget_exceeded"}
    finally:
        redis.kill()
