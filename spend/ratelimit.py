"""Requests and tokens per minute per API key: fixed one-minute windows in the cache.

The cache is Redis in production (REDIS_URL), so every web process shares the counts;
cache.add + cache.incr are atomic there. A request counts as soon as it arrives; tokens
count when the records they belong to are accepted, and a key whose window is already
spent is refused until the window resets (so a batch is never refused for being large).

Fail open: when the cache cannot be reached (Redis down or restarting), a request is
served unmetered rather than refused, with a warning logged ("usage.ratelimit.unavailable")
and an `X-RateLimit-Status: unavailable` header in place of counts that would be wrong.
Counting starts again by itself once the cache answers.

On Redis every count is one round trip: a Lua script (spend/counters.py RATE) over the
key's two counters of the minute, through the process's one persistent client; the
counters carry the organization's hash tag, so authorize's script counts them in the same
step as its decision. Without Redis (tests, a local cache) the cache's commands count.
"""

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from accounts.models import APIKey, SessionToken, Tier
from spend import counters
from spend.models import RateLimitRefusal

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# What a cache that cannot be reached raises (redis-py's errors; OSError covers sockets).
CACHE_UNAVAILABLE = (RedisError, OSError)

# (requests per minute, tokens per minute) by tier; settings.USAGE_RATE_LIMITS overrides.
DEFAULT_RATE_LIMITS: dict[str, tuple[int, int]] = {
    Tier.FREE: (60, 100_000),
    Tier.DEVELOPER: (600, 1_000_000),
    Tier.STARTUP: (3_000, 10_000_000),
    Tier.ENTERPRISE: (10_000, 100_000_000),
}


@dataclass(frozen=True)
class Quota:
    limit: int
    remaining: int
    reset: int  # Unix time the window ends


@dataclass(frozen=True)
class RateState:
    requests: Quota
    tokens: Quota
    limited: bool  # over either limit: refuse this request
    available: bool = True  # False: the cache was unreachable, the request went unmetered

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.requests.reset - time.time()))

    def headers(self) -> dict[str, str]:
        if not self.available:
            return {"X-RateLimit-Status": "unavailable"}
        return {
            "X-RateLimit-Limit-RPM": str(self.requests.limit),
            "X-RateLimit-Remaining-RPM": str(self.requests.remaining),
            "X-RateLimit-Reset-RPM": str(self.requests.reset),
            "X-RateLimit-Limit-TPM": str(self.tokens.limit),
            "X-RateLimit-Remaining-TPM": str(self.tokens.remaining),
            "X-RateLimit-Reset-TPM": str(self.tokens.reset),
        }


def limits_for(key: APIKey) -> tuple[int, int]:
    """The key's own limits, else its organization tier's."""
    table = {**DEFAULT_RATE_LIMITS, **settings.USAGE_RATE_LIMITS}
    rpm, tpm = table.get(key.organization.tier, DEFAULT_RATE_LIMITS[Tier.FREE])
    return (key.rate_limit_rpm or rpm, key.rate_limit_tpm or tpm)


def project_limits(key: APIKey) -> tuple[int, int]:
    """The key's project's limits over all its keys, for authorize (0: none)."""
    project = key.project
    return (project.rate_limit_rpm or 0, project.rate_limit_tpm or 0)


def _window() -> tuple[int, int]:
    window = int(time.time() // WINDOW_SECONDS)
    return window, (window + 1) * WINDOW_SECONDS


def rate_window() -> tuple[int, int]:
    """The current minute's number and the Unix time it ends."""
    return _window()


def _counter(name: str, window: int) -> str:
    return f"usage:ratelimit:{name}:{window}"


def _bump(name: str, window: int, amount: int) -> int:
    counter = _counter(name, window)
    cache.add(counter, 0, timeout=WINDOW_SECONDS * 2)
    try:
        return cache.incr(counter, amount)
    except ValueError:  # evicted between add and incr
        cache.set(counter, amount, timeout=WINDOW_SECONDS * 2)
        return amount


def rate_keys(org_id: int, subject: str, window: int) -> tuple[str, str]:
    """The Redis names of a subject's request and token counters of a minute."""
    tag = counters.org_tag(org_id)
    return f"{tag}:rl:{subject}:{window}:rpm", f"{tag}:rl:{subject}:{window}:tpm"


def _script(
    mode: str, org_id: int, subject: str, rpm: int, tpm: int, tokens: int = 0
) -> tuple[int, int, bool] | None:
    """(requests, tokens used, over) from the rate script; None without Redis."""
    conn = counters.client()
    if conn is None:
        return None
    window, _reset = _window()
    requests, used, over = counters.RATE(
        conn,
        list(rate_keys(org_id, subject, window)),
        [mode, rpm, tpm, tokens, WINDOW_SECONDS * 2],
    )
    return int(requests), int(used), bool(over)


def ratelimit_request(*, key: APIKey) -> RateState:
    """Count one request for the key and say whether it is within both limits."""
    rpm, tpm = limits_for(key)
    return _count_request(key.organization_id, str(key.pk), rpm, tpm)


def _unavailable(subject: str, exc: Exception, rpm: int, tpm: int, reset: int) -> RateState:
    logger.warning(
        "usage.ratelimit.unavailable",
        extra={"subject": subject, "error": f"{type(exc).__name__}: {exc}"[:300]},
    )
    return RateState(
        requests=Quota(rpm, rpm, reset),
        tokens=Quota(tpm, tpm, reset),
        limited=False,
        available=False,
    )


def _count_request(org_id: int, subject: str, rpm: int, tpm: int) -> RateState:
    window, reset = _window()
    try:
        counted = _script("request", org_id, subject, rpm, tpm)
        if counted is not None:
            requests, tokens, _over = counted
        else:
            requests = _bump(f"{subject}:rpm", window, 1)
            tokens = cache.get(_counter(f"{subject}:tpm", window), 0)
    except CACHE_UNAVAILABLE as exc:
        return _unavailable(subject, exc, rpm, tpm, reset)
    return RateState(
        requests=Quota(rpm, max(0, rpm - requests), reset),
        tokens=Quota(tpm, max(0, tpm - tokens), reset),
        limited=requests > rpm or tokens >= tpm,
    )


def ratelimit_request_session(*, token: SessionToken) -> RateState:
    """Count one request for an account session token, at its organization tier's limits
    (its own counters: a person's reads never eat a program's API-key quota)."""
    table = {**DEFAULT_RATE_LIMITS, **settings.USAGE_RATE_LIMITS}
    rpm, tpm = table.get(token.organization.tier, DEFAULT_RATE_LIMITS[Tier.FREE])
    return _count_request(token.organization_id, f"session-{token.pk}", rpm, tpm)


def ratelimit_live_counts(
    *, key_ids: list[int], org_id: int | None = None
) -> dict[int, tuple[int, int]]:
    """Requests and tokens each key has used in the current minute (one cache round trip)."""
    window, _reset = _window()
    conn = counters.client()
    if conn is not None and org_id is not None:
        pairs = [rate_keys(org_id, str(kid), window) for kid in key_ids]
        try:
            values = conn.mget([n for pair in pairs for n in pair]) if pairs else []
        except CACHE_UNAVAILABLE as exc:
            logger.warning("usage.ratelimit.unavailable", extra={"error": str(exc)[:300]})
            values = [None] * (2 * len(key_ids))
        return {
            kid: (int(values[2 * i] or 0), int(values[2 * i + 1] or 0))
            for i, kid in enumerate(key_ids)
        }
    names = {
        kid: (_counter(f"{kid}:rpm", window), _counter(f"{kid}:tpm", window)) for kid in key_ids
    }
    try:
        counts = cache.get_many([n for pair in names.values() for n in pair]) if names else {}
    except CACHE_UNAVAILABLE as exc:
        logger.warning("usage.ratelimit.unavailable", extra={"error": str(exc)[:300]})
        counts = {}
    return {
        kid: (int(counts.get(rpm, 0)), int(counts.get(tpm, 0))) for kid, (rpm, tpm) in names.items()
    }


def ratelimit_record_refusal(*, key: APIKey) -> None:
    """Count a 429 for the key in this minute's row (kept for the panel and alerts)."""
    from django.db import IntegrityError, transaction
    from django.db.models import F
    from django.utils import timezone

    minute = timezone.now().replace(second=0, microsecond=0)
    rows = RateLimitRefusal.objects.filter(api_key=key, minute=minute)
    if rows.update(count=F("count") + 1):
        return
    try:
        with transaction.atomic():
            RateLimitRefusal.objects.create(
                organization_id=key.organization_id, api_key=key, minute=minute, count=1
            )
    except IntegrityError:  # another process made the row first
        rows.update(count=F("count") + 1)


def ratelimit_tokens(*, key: APIKey, state: RateState, tokens: int) -> RateState:
    """Count the tokens a request used; the state to report in its headers."""
    if tokens <= 0 or not state.available:
        return state
    window, reset = _window()
    try:
        counted = _script("tokens", key.organization_id, str(key.pk), 0, 0, tokens)
        used = counted[1] if counted is not None else _bump(f"{key.pk}:tpm", window, tokens)
    except CACHE_UNAVAILABLE as exc:  # went away during the request: served, not counted
        return _unavailable(str(key.pk), exc, state.requests.limit, state.tokens.limit, reset)
    return RateState(
        requests=state.requests,
        tokens=Quota(state.tokens.limit, max(0, state.tokens.limit - used), reset),
        limited=state.limited,
    )


# --- Spend controls: authorize enforces RPM and TPM; ingestion only a ceiling --


def ratelimit_authorize(*, key: APIKey, tokens: int) -> RateState:
    """Count one authorization and its worst-case tokens in the key's minute: refused when
    the requests are over RPM or the tokens would pass TPM (refused tokens do not count)."""
    rpm, tpm = limits_for(key)
    return _authorize_count(key.organization_id, str(key.pk), rpm, tpm, tokens)


def ratelimit_authorize_project(*, key: APIKey, tokens: int) -> RateState | None:
    """The same for the key's project over all its keys, when it has limits (else None).
    Counted after the key's own: a request the project refuses has its tokens counted for
    the key already, which refuses sooner, never allows more."""
    rpm, tpm = project_limits(key)
    if not rpm and not tpm:
        return None
    unlimited = 2**62  # a limit left empty: never the one that refuses
    subject = f"p{key.project_id}"
    return _authorize_count(
        key.organization_id, subject, rpm or unlimited, tpm or unlimited, tokens
    )


def _authorize_count(org_id: int, subject: str, rpm: int, tpm: int, tokens: int) -> RateState:
    window, reset = _window()
    try:
        counted = _script("authorize", org_id, subject, rpm, tpm, tokens)
        if counted is not None:
            requests, used, over = counted
        else:
            requests = _bump(f"{subject}:rpm", window, 1)
            used = cache.get(_counter(f"{subject}:tpm", window), 0)
            over = requests > rpm or used + tokens > tpm
            if not over and tokens > 0:
                used = _bump(f"{subject}:tpm", window, tokens)
    except CACHE_UNAVAILABLE as exc:
        return _unavailable(subject, exc, rpm, tpm, reset)
    return RateState(
        requests=Quota(rpm, max(0, rpm - requests), reset),
        tokens=Quota(tpm, max(0, tpm - used), reset),
        limited=over,
    )


def ratelimit_authorize_peek(*, key: APIKey) -> RateState:
    """Without counting anything: whether the key's minute is already spent (no request or
    no token left), so a refusal can come before the request's work."""
    rpm, tpm = limits_for(key)
    window, reset = _window()
    subject = str(key.pk)
    names = (_counter(f"{subject}:rpm", window), _counter(f"{subject}:tpm", window))
    try:
        counted = _script("peek", key.organization_id, subject, rpm, tpm)
        if counted is not None:
            requests, used, _over = counted
        else:
            counts = cache.get_many(names)
            requests, used = int(counts.get(names[0], 0)), int(counts.get(names[1], 0))
    except CACHE_UNAVAILABLE as exc:
        return _unavailable(subject, exc, rpm, tpm, reset)
    return RateState(
        requests=Quota(rpm, max(0, rpm - requests), reset),
        tokens=Quota(tpm, max(0, tpm - used), reset),
        limited=requests >= rpm or used >= tpm,
    )


def ingest_ceiling(key: APIKey) -> int:
    """Batches a key may send a minute: protection of the console, well above any
    customer limit (ten times the key's RPM, at least INGEST_CEILING_PER_MINUTE)."""
    rpm, _tpm = limits_for(key)
    return max(10 * rpm, settings.INGEST_CEILING_PER_MINUTE)


def ratelimit_ingest(*, key: APIKey) -> RateState:
    """Count one ingestion request against the console's ceiling (its own counter: batches
    never use the gateway's RPM); the TPM figures are the key's authorized tokens."""
    ceiling = ingest_ceiling(key)
    _rpm, tpm = limits_for(key)
    window, reset = _window()
    try:
        conn = counters.client()
        if conn is not None:
            batches, _ = rate_keys(key.organization_id, f"{key.pk}:ingest", window)
            _, tokens = rate_keys(key.organization_id, str(key.pk), window)
            requests, used, _over = counters.RATE(
                conn, [batches, tokens], ["request", ceiling, tpm, 0, WINDOW_SECONDS * 2]
            )
        else:
            requests = _bump(f"{key.pk}:ingest", window, 1)
            used = cache.get(_counter(f"{key.pk}:tpm", window), 0)
    except CACHE_UNAVAILABLE as exc:
        return _unavailable(str(key.pk), exc, ceiling, tpm, reset)
    return RateState(
        requests=Quota(ceiling, max(0, ceiling - requests), reset),
        tokens=Quota(tpm, max(0, tpm - used), reset),
        limited=requests > ceiling,
    )
