"""The usage panel's API key activity: per key, what it sent and was charged in the
window, and its recent load against its rate limits (the same figures the main page
shows). Aggregated in the database (rollups/selectors/engine.py)."""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    Sum,
)

from accounts.models import APIKeyKind, Organization, Tier
from insights.selectors.panel import job_figures
from rollups.selectors.coverage import RollupCoverage
from rollups.selectors.engine import (
    Projects,
    coverage_or_default,
    job_parts,
    merge_rows,
    union_rows,
)
from spend import ratelimit
from spend.models import RateLimitRefusal

# --- API key activity -----------------------------------------------------------------


@dataclass(frozen=True)
class KeyActivity:
    """One API key's jobs in the window (key_id None: the Unattributed card)."""

    key_id: int | None
    name: str
    display: str
    kind: str
    revoked: bool
    jobs: int
    core_hours: Decimal
    running: int
    byoc: int
    failed: int
    cancelled: int
    last_job_at: datetime | None
    wasted_credits: Decimal
    wasted_core_hours: Decimal
    rate_limit_rpm: int | None = None
    rate_limit_tpm: int | None = None
    # Filled from key_recent_load: what the key sent in the last minute.
    requests_last_minute: int = 0
    tokens_last_minute: int = 0
    # Requests refused with 429 in the window.
    refused: int = 0

    @property
    def unattributed(self) -> bool:
        return self.key_id is None


_KEY_FIELDS = [
    "api_key_id",
    "api_key__name",
    "api_key__prefix",
    "api_key__last_four",
    "api_key__kind",
    "api_key__revoked_at",
    "api_key__rate_limit_rpm",
    "api_key__rate_limit_tpm",
]


def api_key_activity(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    coverage: RollupCoverage | None = None,
    projects: Projects = None,
) -> list[KeyActivity]:
    """A row per API key that submitted jobs in [start, end), plus one for no key
    (unattributed), busiest first; with the credits failed and cancelled jobs burned."""
    split = coverage_or_default(org, coverage).split(start, end)
    merged = merge_rows(
        union_rows(job_parts(org, split, _KEY_FIELDS, projects)), _KEY_FIELDS, count="submitted"
    )
    rows = _key_rows(merged)
    kinds = dict(APIKeyKind.choices)
    activity = [_key_card(row, kinds) for row in rows]
    # Unattributed work is its own card, after the keys.
    activity.sort(key=lambda card: card.unattributed)
    return activity


def _key_rows(merged: dict[tuple, dict]) -> list[dict]:
    """A row of figures per key (None: no key), busiest first, then by name."""
    rows = []
    for key, figures in merged.items():
        values = job_figures(figures, ("on_controllers",))
        rows.append(
            {
                **dict(zip(_KEY_FIELDS, key, strict=True)),
                "jobs": values["submitted"],
                "hours": values["core_hours_managed"] + values["core_hours_byoc"],
                "running": values["running"],
                "byoc": values["on_controllers"],
                "failed": values["failed"],
                "cancelled": values["cancelled"],
                "last_job_at": figures.get("last_at"),
                "wasted_credits": values["wasted_credits"],
                "wasted_core_hours": values["wasted_core_hours"],
            }
        )
    rows.sort(
        key=lambda row: (-row["jobs"], row["api_key__name"] is None, row["api_key__name"] or "")
    )
    return rows


def _key_card(row: dict, kinds: dict[str, str]) -> KeyActivity:
    """A key's card (or the unattributed work's, without a key) from its row."""
    key_id = row["api_key_id"]
    return KeyActivity(
        key_id=key_id,
        name=row["api_key__name"] if key_id else "Unattributed",
        display=(f"{row['api_key__prefix']}••••••••{row['api_key__last_four']}" if key_id else ""),
        kind=kinds.get(row["api_key__kind"], "") if key_id else "No API key",
        revoked=row["api_key__revoked_at"] is not None,
        jobs=row["jobs"],
        core_hours=row["hours"],
        running=row["running"],
        byoc=row["byoc"],
        failed=row["failed"],
        cancelled=row["cancelled"],
        last_job_at=row["last_job_at"],
        wasted_credits=row["wasted_credits"],
        wasted_core_hours=row["wasted_core_hours"],
        rate_limit_rpm=row["api_key__rate_limit_rpm"],
        rate_limit_tpm=row["api_key__rate_limit_tpm"],
    )


def key_recent_load(
    *, org: Organization, cards: list[KeyActivity], start: datetime | None, end: datetime
) -> list[KeyActivity]:
    """Limits at a glance: each key's requests and tokens per minute (its own limits, else
    its tier's), what the rate limiter counted in the current minute (one cache round trip
    for all keys) and how many requests it refused with 429 in [start, end) (one query)."""
    tier_rpm, tier_tpm = {
        **ratelimit.DEFAULT_RATE_LIMITS,
        **settings.USAGE_RATE_LIMITS,
    }.get(org.tier, ratelimit.DEFAULT_RATE_LIMITS[Tier.FREE])
    key_ids = [card.key_id for card in cards if card.key_id is not None]
    live = ratelimit.ratelimit_live_counts(key_ids=key_ids, org_id=org.pk)
    refused: dict[int, int] = {}
    if key_ids:
        rows = RateLimitRefusal.objects.filter(organization=org, minute__lt=end)
        if start is not None:
            rows = rows.filter(minute__gte=start)
        refused = dict(
            rows.values("api_key_id")
            .annotate(total=Sum("count"))
            .values_list("api_key_id", "total")
        )
    loaded = []
    for card in cards:
        if card.key_id is None:
            loaded.append(card)
            continue
        requests, tokens = live[card.key_id]
        loaded.append(
            replace(
                card,
                rate_limit_rpm=card.rate_limit_rpm or tier_rpm,
                rate_limit_tpm=card.rate_limit_tpm or tier_tpm,
                requests_last_minute=requests,
                tokens_last_minute=tokens,
                refused=refused.get(card.key_id, 0),
            )
        )
    return loaded
