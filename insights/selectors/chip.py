"""The session chip's balance in core-hours at the default worker type's rate."""

from decimal import Decimal

from billing.selectors import default_worker_type

# --- Session chip ---------------------------------------------------------------------


DEFAULT_WORKER_RATE_CACHE = ("usage:chip:default-worker-rate", 60)


def default_worker_rate() -> tuple[Decimal, int] | None:
    worker = default_worker_type()
    if worker is None or not worker.hourly_rate:
        return None
    return worker.hourly_rate, worker.cores


def core_hour_balance(*, credits: Decimal) -> Decimal | None:
    """A credit balance in core-hours at the default worker type's rate (its hourly
    rate spread over its cores); None when no default worker type is priced.

    The chip shows it on every page, so the rate is cached for a minute: an operator's
    price change reaches the chip within that minute (the price list is global, so this
    reads no organization's data).
    """
    from django.core.cache import cache

    key, timeout = DEFAULT_WORKER_RATE_CACHE
    cached = cache.get(key)
    if cached is None:
        rate = default_worker_rate()
        cached = ("priced", *rate) if rate else ("unpriced",)
        cache.set(key, cached, timeout)
    if cached[0] != "priced":
        return None
    _, hourly_rate, cores = cached
    return credits * cores / hourly_rate
