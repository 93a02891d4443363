"""The usage panel's figures: the jobs overview, the timeline, API key activity,
controller load, tokens against the allocation, usage by model, endpoint and member.

Every selector takes the organization and filters by it, and aggregates in the
database (rollups/selectors/engine.py): one query per figure, whatever the number of
keys, controllers or models. Ranges are half-open [start, end); start None means "since
the beginning". Jobs belong to a window by when they were submitted: a window's
core-hours, failures and running counts are those of the jobs submitted in it.
"""

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Count,
    F,
    Max,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts import calendar
from accounts.calendar import local_day_start
from accounts.models import APIKeyKind, Organization, Tier
from rollups.models import JobBucket, JobDaily, QueryBucket, QueryDaily, QueryDimension
from rollups.selectors.coverage import RollupCoverage, Split
from rollups.selectors.engine import (
    NEVER,
    ZERO,
    UnionPart,
    as_dec,
    as_int,
    coverage_or_default,
    days_q,
    job_parts,
    merge_rows,
    or_never,
    query_parts,
    query_usage,
    raw_q,
    union_rows,
)
from spend import ratelimit
from spend.models import RateLimitRefusal
from usage.models import Controller, Job, JobStatus, Query, controller_online_window
from usage.windows import days_between, dense_days, last_days

TIMELINE_DAYS = 14
TOP_ENDPOINTS = 10
TOP_MEMBERS = 20


# --- Overview cards -------------------------------------------------------------------


@dataclass(frozen=True)
class JobsOverview:
    """The four overview cards: jobs submitted in the window and what became of them."""

    submitted: int = 0
    completed: int = 0
    running: int = 0
    failed: int = 0
    cancelled: int = 0
    on_controllers: int = 0
    managed: int = 0
    core_hours_managed: Decimal = ZERO
    core_hours_byoc: Decimal = ZERO
    # What failed and cancelled jobs burned.
    wasted_credits: Decimal = ZERO
    wasted_core_hours: Decimal = ZERO

    @property
    def core_hours_billed(self) -> Decimal:
        return self.core_hours_managed + self.core_hours_byoc

    @property
    def failure_pressure(self) -> int:
        return self.failed + self.cancelled

    @property
    def byoc_share(self) -> float | None:
        """Percent of the window's jobs that ran on controllers (None with no jobs)."""
        return None if not self.submitted else 100 * self.on_controllers / self.submitted


_JOB_COUNTS = ("submitted", "completed", "running", "failed", "cancelled")
_JOB_AMOUNTS = ("core_hours_managed", "core_hours_byoc", "wasted_credits", "wasted_core_hours")


def _job_figures(figures: dict, names: tuple[str, ...] = ()) -> dict:
    out: dict[str, int | Decimal] = {
        name: as_int(figures.get(name)) for name in (*_JOB_COUNTS, *names)
    }
    out.update({name: as_dec(figures.get(name)) for name in _JOB_AMOUNTS})
    return out


def jobs_overview(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    coverage: RollupCoverage | None = None,
) -> JobsOverview:
    """Counts and core-hours of the jobs submitted in [start, end) (one query)."""
    split = coverage_or_default(org, coverage).split(start, end)
    merged = merge_rows(union_rows(job_parts(org, split, [])), [])
    figures = merged.get((), {})
    return JobsOverview(**_job_figures(figures, ("on_controllers", "managed")))


# --- Timeline -------------------------------------------------------------------------


@dataclass(frozen=True)
class JobDay:
    """One day of the timeline (and one row of its CSV)."""

    day: date
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    core_hours_managed: Decimal = ZERO
    core_hours_byoc: Decimal = ZERO

    @property
    def core_hours(self) -> Decimal:
        return self.core_hours_managed + self.core_hours_byoc


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def jobs_by_day(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    tz: str,
    coverage: RollupCoverage | None = None,
) -> dict[date, JobDay]:
    """Jobs submitted in [start, end) per calendar day in tz; days without jobs absent."""
    split = coverage_or_default(org, coverage).split(start, end, tz=tz)
    raw, rolled, minus, bucketed, minus_bucketed = job_parts(org, split, ["f_day"])
    day_of = TruncDate("submitted_at", tzinfo=ZoneInfo(tz))
    bucket_day = TruncDate("bucket", tzinfo=ZoneInfo(tz))
    parts = [
        (Job.objects.annotate(f_day=day_of), *raw[1:]),
        (JobDaily.objects.annotate(f_day=F("day")), *rolled[1:]),
        (Job.objects.annotate(f_day=day_of), *minus[1:]),
        (JobBucket.objects.annotate(f_day=bucket_day), *bucketed[1:]),
        (JobBucket.objects.annotate(f_day=bucket_day), *minus_bucketed[1:]),
    ]
    merged = merge_rows(union_rows(parts), ["f_day"], count="submitted")
    per_day = {}
    for (day,), figures in sorted(merged.items(), key=lambda item: _as_date(item[0][0])):
        values = _job_figures(figures)
        del values["running"], values["wasted_credits"], values["wasted_core_hours"]
        per_day[_as_date(day)] = JobDay(day=_as_date(day), **values)
    return per_day


def job_timeline(
    *,
    org: Organization,
    now: datetime,
    tz: str,
    days: int = TIMELINE_DAYS,
    coverage: RollupCoverage | None = None,
) -> list[JobDay]:
    """The last `days` calendar days in tz, oldest first, every day present (zeros)."""
    calendar = last_days(days, now=now, tz=tz)
    start = local_day_start(calendar[0], tz=tz)
    end = local_day_start(calendar[-1] + timedelta(days=1), tz=tz)
    per_day = jobs_by_day(org=org, start=start, end=end, tz=tz, coverage=coverage)
    return [value or JobDay(day=day) for day, value in dense_days(calendar, per_day, empty=None)]


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
) -> list[KeyActivity]:
    """A row per API key that submitted jobs in [start, end), plus one for no key
    (unattributed), busiest first; with the credits failed and cancelled jobs burned."""
    split = coverage_or_default(org, coverage).split(start, end)
    merged = merge_rows(
        union_rows(job_parts(org, split, _KEY_FIELDS)), _KEY_FIELDS, count="submitted"
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
        values = _job_figures(figures, ("on_controllers",))
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


# --- Controller load ------------------------------------------------------------------


@dataclass(frozen=True)
class ControllerLoad:
    """One controller's card: capacity, status and the jobs it handled in the window."""

    id: int
    name: str
    cores: int
    memory_gb: int
    online: bool
    last_heartbeat_at: datetime | None
    handled: int
    running: int
    completed: int
    core_hours: Decimal
    last_job_at: datetime | None


def controller_load(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    now: datetime | None = None,
    coverage: RollupCoverage | None = None,
) -> list[ControllerLoad]:
    """Every controller of the organization, by name, with the jobs submitted to it in
    [start, end); last handled job over all time (two queries: the controllers, and one
    union for the window's figures and the all-time last job)."""
    now = now or timezone.now()
    cover = coverage_or_default(org, coverage)
    window, ever = cover.split(start, end), cover.split(None, None)
    org_q = Q(organization=org, controller__isnull=False)
    rows = union_rows(
        [
            *_controller_bucket_parts(org_q, window, ever),
            *_controller_job_parts(org_q, window, ever),
        ]
    )
    return _controller_cards(org, merge_rows(rows, ["controller_id"]), now)


def _controller_bucket_parts(org_q: Q, window: Split, ever: Split) -> list[UnionPart]:
    """The bucket aggregates' share of the controllers' figures: the window's buckets
    (less those of a first day read whole) and the all-time last job."""
    b_window = or_never(raw_q("bucket", window.buckets))
    b_ever = or_never(raw_q("bucket", ever.buckets))
    b_minus = raw_q("bucket", window.minus_buckets)
    live = org_q & ~Q(submitted=0)
    return [
        (
            JobBucket.objects.all(),
            live & (b_window | b_ever),
            ["controller_id"],
            {
                "f_handled": Sum("submitted", filter=b_window),
                "f_running": Sum("running", filter=b_window),
                "f_completed": Sum("completed", filter=b_window),
                "f_core_hours": Sum("core_hours", filter=b_window),
                "f_last_at": Max("last_submitted_at", filter=b_ever),
            },
        ),
        (
            JobBucket.objects.all(),
            None if b_minus is None else live & b_minus,
            ["controller_id"],
            {
                "f_handled": Value(0) - Sum("submitted"),
                "f_running": Value(0) - Sum("running"),
                "f_completed": Value(0) - Sum("completed"),
                "f_core_hours": Value(ZERO) - Sum("core_hours"),
                "f_last_at": Max("last_submitted_at", filter=NEVER),
            },
        ),
    ]


def _controller_job_parts(org_q: Q, window: Split, ever: Split) -> list[UnionPart]:
    """The raw jobs' and day rollups' share of the controllers' figures: the window's
    (less the part of a first day read whole before the window) and the all-time last
    job."""
    raw_window, raw_ever = raw_q("submitted_at", window.raw), raw_q("submitted_at", ever.raw)
    days_window, days_ever = days_q(window), days_q(ever)
    # The window's hour rows at its edges lie inside the all-time split's clean days.
    days_read = days_ever if days_window is None else or_never(days_ever) | days_window
    minus_where = raw_q("submitted_at", window.minus)
    # An empty Q is "no bounds"; `Q(...) | Q()` would drop it, so it is tested first.
    raw_window, raw_ever = or_never(raw_window), or_never(raw_ever)
    days_window = or_never(days_window)
    return [
        (
            Job.objects.all(),
            org_q & (Q() if not raw_ever else raw_window | raw_ever),
            ["controller_id"],
            {
                "f_handled": Count("id", filter=raw_window),
                "f_running": Count("id", filter=(raw_window) & Q(status=JobStatus.RUNNING)),
                "f_completed": Count("id", filter=(raw_window) & Q(status=JobStatus.COMPLETED)),
                "f_core_hours": Sum("core_hours", filter=raw_window),
                "f_last_at": Max("submitted_at", filter=raw_ever),
            },
        ),
        (
            JobDaily.objects.all(),
            None if days_read is None else org_q & days_read,
            ["controller_id"],
            {
                "f_handled": Sum("submitted", filter=days_window),
                "f_running": Sum("running", filter=days_window),
                "f_completed": Sum("completed", filter=days_window),
                "f_core_hours": Sum("core_hours", filter=days_window),
                "f_last_at": Max("last_submitted_at", filter=or_never(days_ever)),
            },
        ),
        (
            Job.objects.all(),
            None if minus_where is None else org_q & minus_where,
            ["controller_id"],
            {
                "f_handled": Value(0) - Count("id"),
                "f_running": Value(0) - Count("id", filter=Q(status=JobStatus.RUNNING)),
                "f_completed": Value(0) - Count("id", filter=Q(status=JobStatus.COMPLETED)),
                "f_core_hours": Value(ZERO) - Sum("core_hours"),
                "f_last_at": Max("submitted_at", filter=NEVER),
            },
        ),
    ]


def _controller_cards(
    org: Organization, jobs: dict[tuple, dict], now: datetime
) -> list[ControllerLoad]:
    """Every controller of the organization, by name, with its jobs' figures (one query)."""
    online_since = now - controller_online_window()
    loads = []
    for c in Controller.objects.filter(organization=org).order_by("name"):
        figures = jobs.get((c.pk,), {})
        loads.append(
            ControllerLoad(
                id=c.pk,
                name=c.name,
                cores=c.cores,
                memory_gb=c.memory_gb,
                online=c.last_heartbeat_at is not None and c.last_heartbeat_at > online_since,
                last_heartbeat_at=c.last_heartbeat_at,
                handled=as_int(figures.get("handled")),
                running=as_int(figures.get("running")),
                completed=as_int(figures.get("completed")),
                core_hours=as_dec(figures.get("core_hours")),
                last_job_at=figures.get("last_at"),
            )
        )
    return loads


# --- Tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenAllocation:
    """Month-to-date tokens against the tier's monthly allocation (None: unlimited)."""

    month_start: datetime
    used: int
    allocation: int | None

    @property
    def percent(self) -> float | None:
        if not self.allocation:
            return None
        return 100 * self.used / self.allocation

    @property
    def bar_percent(self) -> int:
        """The progress bar's fill, capped at 100."""
        return 0 if self.percent is None else min(100, round(self.percent))

    @property
    def remaining(self) -> int | None:
        return None if self.allocation is None else max(0, self.allocation - self.used)


def tokens_month_to_date(
    *, org: Organization, now: datetime, tz: str, coverage: RollupCoverage | None = None
) -> TokenAllocation:
    """Tokens of queries since the start of the calendar month in tz (one query)."""
    month_start = calendar.month_start(now, tz=tz).astimezone(UTC)
    split = coverage_or_default(org, coverage).split(month_start, now + timedelta(days=1))
    merged = merge_rows(union_rows(query_parts(org, split, [])), [])
    used = as_int(merged.get((), {}).get("total_tokens"))
    return TokenAllocation(
        month_start=month_start, used=used, allocation=org.monthly_token_allocation
    )


@dataclass(frozen=True)
class ModelUsage:
    """A model's queries in a range: counts, tokens and credits."""

    model: str
    queries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    credits: Decimal = ZERO


def _queries_grouped(
    org: Organization, start: datetime | None, end: datetime, coverage, group: str
) -> list[tuple[str, dict]]:
    split = coverage_or_default(org, coverage).split(start, end)
    dimension = {"model__name": QueryDimension.MODEL}.get(group, group)
    merged = merge_rows(
        union_rows(query_parts(org, split, [group], dimension)), [group], count="queries"
    )
    return [(key[0], query_usage(figures)) for key, figures in merged.items()]


def queries_by_model(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    coverage: RollupCoverage | None = None,
) -> list[ModelUsage]:
    """Queries per model in [start, end), most tokens first (one query)."""
    rows = _queries_grouped(org, start, end, coverage, "model__name")
    rows.sort(key=lambda item: (-item[1]["total_tokens"], item[0]))
    return [ModelUsage(model=name, **figures) for name, figures in rows]


def tokens_by_day_and_model(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    tz: str,
    coverage: RollupCoverage | None = None,
) -> dict[tuple[date, str], int]:
    """Tokens per (calendar day in tz, model) in [start, end) (one query)."""
    split = coverage_or_default(org, coverage).split(start, end, tz=tz)
    group = ["f_day", "model__name"]
    bucketed, minus_bucketed, raw, rolled, minus = query_parts(org, split, group)
    day_of = TruncDate("occurred_at", tzinfo=ZoneInfo(tz))
    bucket_day = TruncDate("bucket", tzinfo=ZoneInfo(tz))
    parts = [
        (Query.objects.annotate(f_day=day_of), *raw[1:]),
        (QueryDaily.objects.annotate(f_day=F("day")), *rolled[1:]),
        (Query.objects.annotate(f_day=day_of), *minus[1:]),
        (QueryBucket.objects.annotate(f_day=bucket_day), *bucketed[1:]),
        (QueryBucket.objects.annotate(f_day=bucket_day), *minus_bucketed[1:]),
    ]
    merged = merge_rows(union_rows(parts), group, count="queries")
    return {
        (_as_date(day), model): as_int(figures.get("total_tokens"))
        for (day, model), figures in sorted(
            merged.items(), key=lambda item: (_as_date(item[0][0]), item[0][1])
        )
    }


@dataclass(frozen=True)
class TokenTrend:
    """Daily tokens by model over the window, every day present."""

    days: list[date]
    models: list[str]
    # tokens[model][i] belongs to days[i]
    tokens: dict[str, list[int]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.models


def token_trend(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    tz: str,
    coverage: RollupCoverage | None = None,
) -> TokenTrend:
    """The window's daily tokens per model, dense (no gaps) from its first day to today."""
    per_day = tokens_by_day_and_model(org=org, start=start, end=end, tz=tz, coverage=coverage)
    zone = ZoneInfo(tz)
    last = end.astimezone(zone).date()
    if start is not None:
        first = start.astimezone(zone).date()
    else:
        first = min((day for day, _model in per_day), default=last)
    days = list(days_between(first, last + timedelta(days=1)))
    models = sorted({model for _day, model in per_day})
    return TokenTrend(
        days=days,
        models=models,
        tokens={model: [per_day.get((day, model), 0) for day in days] for model in models},
    )


@dataclass(frozen=True)
class GroupUsage:
    """Queries grouped by something (an endpoint, a team member)."""

    name: str
    queries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    credits: Decimal = ZERO


def top_endpoints(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    limit: int = TOP_ENDPOINTS,
    coverage: RollupCoverage | None = None,
) -> list[GroupUsage]:
    """The endpoints with the most queries in [start, end) (one query)."""
    rows = _queries_grouped(org, start, end, coverage, "endpoint")
    rows.sort(key=lambda item: (-item[1]["queries"], -item[1]["total_tokens"], item[0]))
    return [GroupUsage(name=name, **figures) for name, figures in rows[:limit]]


def usage_by_member(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    limit: int = TOP_MEMBERS,
    coverage: RollupCoverage | None = None,
) -> list[GroupUsage]:
    """Queries per team member in [start, end), most tokens first (one query)."""
    rows = _queries_grouped(org, start, end, coverage, "member")
    rows.sort(key=lambda item: (-item[1]["total_tokens"], item[0]))
    return [GroupUsage(name=name, **figures) for name, figures in rows[:limit]]
