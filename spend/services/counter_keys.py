"""The spend counters' names, what a reservation looks like in them, the calendar of their
periods, and dropping them (the next authorize rebuilds them): what authorize, the
rebuild and ingestion's moves share (docs/spend-controls.md)."""

import logging
from datetime import date, datetime, time, tzinfo
from decimal import Decimal
from functools import lru_cache

import redis
from django.db import transaction

from accounts.models import Organization
from core.calendar import org_zone
from spend import counters
from usage.windows import period_of

logger = logging.getLogger(__name__)

PERIODS = ("day", "week", "month")
REBUILD_ATTEMPTS = 3
UNAVAILABLE = (redis.exceptions.RedisError, OSError)


def counters_enabled() -> bool:
    return counters.enabled()


def org_keys(org_id: int) -> list[str]:
    tag = counters.org_tag(org_id)
    return [f"{tag}:s", f"{tag}:r", f"{tag}:x", f"{tag}:b"]


def drops_key(org_id: int) -> str:
    return f"{counters.org_tag(org_id)}:d"


def period_starts(org: Organization, at: datetime) -> dict[str, str]:
    """The first day of the day, week and month `at` falls in, on the org's calendar (the
    caller must not change the dict: it is shared)."""
    tz = org_zone(org)
    return _period_starts_of(at.astimezone(tz).date(), tz)


@lru_cache(maxsize=1024)
def _period_starts_of(today: date, tz: tzinfo) -> dict[str, str]:
    # Worked out once per local day and zone: each period_of finds two local midnights,
    # the greater part of authorize's own arithmetic.
    noon = datetime.combine(today, time(12), tzinfo=tz)
    return {p: period_of(p, now=noon, tz=tz).first_day.isoformat() for p in PERIODS}


def reservation_value(
    credits: Decimal, tokens: int, key_id: int, member: str, project_id: int | None
) -> str:
    """A reservation as the scripts keep it: credits, tokens, key, member, project."""
    project = "" if project_id is None else project_id
    return f"{counters.amount_encode(credits)}\0{tokens}\0{key_id}\0{member}\0{project}"


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def counters_drop(*, org_id: int) -> None:
    """Forget the organization's counters (the next authorize rebuilds them)."""
    conn = counters.client()
    if conn is None:
        return
    try:
        pipe = conn.pipeline(transaction=True)
        pipe.incr(drops_key(org_id))
        pipe.delete(org_keys(org_id)[0])
        pipe.execute()
    except UNAVAILABLE as exc:
        logger.warning("usage.spend.counters_drop_failed", extra={"org": org_id, "error": str(exc)})


def after_commit(run) -> None:
    """Run once the current transaction commits (now, outside one)."""
    transaction.on_commit(run)


def counters_drop_on_commit(org_id: int) -> None:
    """Drop the counters now (an authorize meanwhile rebuilds from what is committed) and
    again once the change commits (so nothing rebuilt before it outlives it)."""
    counters_drop(org_id=org_id)
    after_commit(lambda: counters_drop(org_id=org_id))
