"""Reads for the usage panel and the main page's usage summaries.

Every selector takes the organization and filters by it, and aggregates in the
database: one query per figure, whatever the number of keys, controllers or models.
Ranges are half-open [start, end); start None means "since the beginning". Each
figure has its own module-level function taking (org, start, end), so the rollup
work can answer closed days from rollup tables behind the same signatures.

Jobs belong to a window by when they were submitted: a window's core-hours, failures
and running counts are those of the jobs submitted in it.
"""

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest, Least, TruncDate
from django.utils import timezone

from accounts.models import APIKeyKind, Organization, Tier
from usage.models import (
    Controller,
    Job,
    JobStatus,
    Query,
    WorkerSession,
    controller_online_window,
)
from usage.windows import (
    PERIODS,
    Window,
    days_between,
    dense_days,
    last_days,
    local_day_start,
    period_window,
)

ZERO = Decimal("0")
TIMELINE_DAYS = 14
TOP_ENDPOINTS = 10
TOP_MEMBERS = 20
_FAILED = Q(status__in=[JobStatus.FAILED, JobStatus.CANCELLED])


def _in_range(field_name: str, start: datetime | None, end: datetime) -> Q:
    q = Q(**{f"{field_name}__lt": end})
    if start is not None:
        q &= Q(**{f"{field_name}__gte": start})
    return q


def _jobs(org: Organization, start: datetime | None, end: datetime) -> QuerySet[Job]:
    return Job.objects.filter(_in_range("submitted_at", start, end), organization=org)


def _queries(org: Organization, start: datetime | None, end: datetime) -> QuerySet[Query]:
    return Query.objects.filter(_in_range("occurred_at", start, end), organization=org)


def _sum(name: str, **kwargs) -> Coalesce:
    """Sum of a decimal column, zero (not None) over no rows."""
    return Coalesce(Sum(name, **kwargs), Value(ZERO), output_field=Job._meta.get_field(name))


def _int_sum(name: str, **kwargs) -> Coalesce:
    return Coalesce(Sum(name, **kwargs), Value(0))


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


def jobs_overview(*, org: Organization, start: datetime | None, end: datetime) -> JobsOverview:
    """Counts and core-hours of the jobs submitted in [start, end) (one query)."""
    byoc = Q(controller__isnull=False)
    row = _jobs(org, start, end).aggregate(
        submitted=Count("id"),
        completed=Count("id", filter=Q(status=JobStatus.COMPLETED)),
        running=Count("id", filter=Q(status=JobStatus.RUNNING)),
        failed=Count("id", filter=Q(status=JobStatus.FAILED)),
        cancelled=Count("id", filter=Q(status=JobStatus.CANCELLED)),
        on_controllers=Count("id", filter=byoc),
        managed=Count("id", filter=~byoc),
        core_hours_managed=_sum("core_hours", filter=~byoc),
        core_hours_byoc=_sum("core_hours", filter=byoc),
        wasted_credits=_sum("credits", filter=_FAILED),
        wasted_core_hours=_sum("core_hours", filter=_FAILED),
    )
    return JobsOverview(**row)


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


def jobs_by_day(
    *, org: Organization, start: datetime | None, end: datetime, tz: str
) -> dict[date, JobDay]:
    """Jobs submitted in [start, end) per calendar day in tz; days without jobs absent."""
    byoc = Q(controller__isnull=False)
    rows = (
        _jobs(org, start, end)
        .annotate(day=TruncDate("submitted_at", tzinfo=ZoneInfo(tz)))
        .values("day")
        .annotate(
            submitted=Count("id"),
            completed=Count("id", filter=Q(status=JobStatus.COMPLETED)),
            failed=Count("id", filter=Q(status=JobStatus.FAILED)),
            cancelled=Count("id", filter=Q(status=JobStatus.CANCELLED)),
            core_hours_managed=_sum("core_hours", filter=~byoc),
            core_hours_byoc=_sum("core_hours", filter=byoc),
        )
        .order_by("day")
    )
    return {row["day"]: JobDay(**row) for row in rows}


def job_timeline(
    *, org: Organization, now: datetime, tz: str, days: int = TIMELINE_DAYS
) -> list[JobDay]:
    """The last `days` calendar days in tz, oldest first, every day present (zeros)."""
    calendar = last_days(days, now=now, tz=tz)
    start = local_day_start(calendar[0], tz=tz)
    end = local_day_start(calendar[-1] + timedelta(days=1), tz=tz)
    per_day = jobs_by_day(org=org, start=start, end=end, tz=tz)
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


def api_key_activity(
    *, org: Organization, start: datetime | None, end: datetime
) -> list[KeyActivity]:
    """A row per API key that submitted jobs in [start, end), plus one for no key
    (unattributed), busiest first; with the credits failed and cancelled jobs burned."""
    rows = (
        _jobs(org, start, end)
        .values(
            "api_key_id",
            "api_key__name",
            "api_key__prefix",
            "api_key__last_four",
            "api_key__kind",
            "api_key__revoked_at",
            "api_key__rate_limit_rpm",
            "api_key__rate_limit_tpm",
        )
        .annotate(
            jobs=Count("id"),
            hours=_sum("core_hours"),
            running=Count("id", filter=Q(status=JobStatus.RUNNING)),
            byoc=Count("id", filter=Q(controller__isnull=False)),
            failed=Count("id", filter=Q(status=JobStatus.FAILED)),
            cancelled=Count("id", filter=Q(status=JobStatus.CANCELLED)),
            last_job_at=Max("submitted_at"),
            wasted_credits=_sum("credits", filter=_FAILED),
            wasted_core_hours=_sum("core_hours", filter=_FAILED),
        )
        .order_by("-jobs", "api_key__name")
    )
    kinds = dict(APIKeyKind.choices)
    activity = []
    for row in rows:
        key_id = row["api_key_id"]
        activity.append(
            KeyActivity(
                key_id=key_id,
                name=row["api_key__name"] if key_id else "Unattributed",
                display=(
                    f"{row['api_key__prefix']}••••••••{row['api_key__last_four']}" if key_id else ""
                ),
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
        )
    # Unattributed work is its own card, after the keys.
    activity.sort(key=lambda card: card.unattributed)
    return activity


def key_recent_load(
    *, org: Organization, cards: list[KeyActivity], start: datetime | None, end: datetime
) -> list[KeyActivity]:
    """Limits at a glance: each key's requests and tokens per minute (its own limits, else
    its tier's), what the rate limiter counted in the current minute (one cache round trip
    for all keys) and how many requests it refused with 429 in [start, end) (one query)."""
    from usage import ratelimit
    from usage.models import RateLimitRefusal

    tier_rpm, tier_tpm = {
        **ratelimit.DEFAULT_RATE_LIMITS,
        **getattr(settings, "USAGE_RATE_LIMITS", {}),
    }.get(org.tier, ratelimit.DEFAULT_RATE_LIMITS[Tier.FREE])
    key_ids = [card.key_id for card in cards if card.key_id is not None]
    live = ratelimit.ratelimit_live_counts(key_ids=key_ids)
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
    *, org: Organization, start: datetime | None, end: datetime, now: datetime | None = None
) -> list[ControllerLoad]:
    """Every controller of the organization, by name, with the jobs submitted to it in
    [start, end); last handled job over all time (one query)."""
    now = now or timezone.now()
    in_window = _in_range("jobs__submitted_at", start, end)
    rows = (
        Controller.objects.filter(organization=org)
        .annotate(
            handled=Count("jobs", filter=in_window),
            running=Count("jobs", filter=in_window & Q(jobs__status=JobStatus.RUNNING)),
            completed=Count("jobs", filter=in_window & Q(jobs__status=JobStatus.COMPLETED)),
            hours=Coalesce(
                Sum("jobs__core_hours", filter=in_window),
                Value(ZERO),
                output_field=Job._meta.get_field("core_hours"),
            ),
            last_job_at=Max("jobs__submitted_at"),
        )
        .order_by("name")
    )
    online_since = now - controller_online_window()
    return [
        ControllerLoad(
            id=c.pk,
            name=c.name,
            cores=c.cores,
            memory_gb=c.memory_gb,
            online=c.last_heartbeat_at is not None and c.last_heartbeat_at > online_since,
            last_heartbeat_at=c.last_heartbeat_at,
            handled=c.handled,
            running=c.running,
            completed=c.completed,
            core_hours=c.hours,
            last_job_at=c.last_job_at,
        )
        for c in rows
    ]


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


def tokens_month_to_date(*, org: Organization, now: datetime, tz: str) -> TokenAllocation:
    """Tokens of queries since the start of the calendar month in tz (one query)."""
    local = now.astimezone(ZoneInfo(tz))
    month_start = local_day_start(local.date().replace(day=1), tz=tz)
    used = _queries(org, month_start, now + timedelta(days=1)).aggregate(
        used=_int_sum("total_tokens")
    )["used"]
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


def _query_figures() -> dict:
    return {
        "queries": Count("id"),
        "input_tokens": _int_sum("input_tokens"),
        "output_tokens": _int_sum("output_tokens"),
        "total_tokens": _int_sum("total_tokens"),
        "credits": Coalesce(
            Sum("credits"), Value(ZERO), output_field=Query._meta.get_field("credits")
        ),
    }


def queries_by_model(
    *, org: Organization, start: datetime | None, end: datetime
) -> list[ModelUsage]:
    """Queries per model in [start, end), most tokens first (one query)."""
    rows = (
        _queries(org, start, end)
        .values("model__name")
        .annotate(**_query_figures())
        .order_by("-total_tokens", "model__name")
    )
    return [ModelUsage(model=row.pop("model__name"), **row) for row in rows]


def tokens_by_day_and_model(
    *, org: Organization, start: datetime | None, end: datetime, tz: str
) -> dict[tuple[date, str], int]:
    """Tokens per (calendar day in tz, model) in [start, end) (one query)."""
    rows = (
        _queries(org, start, end)
        .annotate(day=TruncDate("occurred_at", tzinfo=ZoneInfo(tz)))
        .values("day", "model__name")
        .annotate(tokens=_int_sum("total_tokens"))
        .order_by("day", "model__name")
    )
    return {(row["day"], row["model__name"]): row["tokens"] for row in rows}


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


def token_trend(*, org: Organization, start: datetime | None, end: datetime, tz: str) -> TokenTrend:
    """The window's daily tokens per model, dense (no gaps) from its first day to today."""
    per_day = tokens_by_day_and_model(org=org, start=start, end=end, tz=tz)
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
    *, org: Organization, start: datetime | None, end: datetime, limit: int = TOP_ENDPOINTS
) -> list[GroupUsage]:
    """The endpoints with the most queries in [start, end) (one query)."""
    rows = (
        _queries(org, start, end)
        .values("endpoint")
        .annotate(**_query_figures())
        .order_by("-queries", "-total_tokens", "endpoint")[:limit]
    )
    return [GroupUsage(name=row.pop("endpoint"), **row) for row in rows]


def usage_by_member(
    *, org: Organization, start: datetime | None, end: datetime, limit: int = TOP_MEMBERS
) -> list[GroupUsage]:
    """Queries per team member in [start, end), most tokens first (one query)."""
    rows = (
        _queries(org, start, end)
        .values("member")
        .annotate(**_query_figures())
        .order_by("-total_tokens", "member")[:limit]
    )
    return [GroupUsage(name=row.pop("member"), **row) for row in rows]


# --- Main page: worker runtime and end-user queries per period ------------------------


@dataclass(frozen=True)
class ModelRuntime:
    """A model's worker runtime inside a range (sessions clipped to it)."""

    model: str
    runtime: timedelta = timedelta(0)
    sessions: int = 0


def worker_runtime_by_model(
    *, org: Organization, start: datetime | None, end: datetime
) -> list[ModelRuntime]:
    """Worker runtime per model within [start, end): each session counts for the part of
    it inside the range (a session across midnight counts in both days). One query."""
    overlap = Q(organization=org, started_at__lt=end)
    clipped_start = F("started_at")
    if start is not None:
        overlap &= Q(ended_at__gt=start)
        clipped_start = Greatest("started_at", Value(start, output_field=DateTimeField()))
    clipped_end = Least("ended_at", Value(end, output_field=DateTimeField()))
    rows = (
        WorkerSession.objects.filter(overlap)
        .values("model__name")
        .annotate(
            runtime=Sum(
                ExpressionWrapper(clipped_end - clipped_start, output_field=DurationField())
            ),
            sessions=Count("id"),
        )
        .order_by("-runtime", "model__name")
    )
    return [
        ModelRuntime(
            model=row["model__name"],
            runtime=row["runtime"] or timedelta(0),
            sessions=row["sessions"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class PeriodColumn:
    key: str
    label: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class SummaryRow:
    """One model (or the total) across the periods, a cell per period."""

    model: str
    cells: list


@dataclass(frozen=True)
class UsageSummaries:
    """The main page's Worker Runtime Summary and End-User Query Summary."""

    periods: list[PeriodColumn]
    runtime_total: SummaryRow
    runtime_rows: list[SummaryRow]
    queries_total: SummaryRow
    queries_rows: list[SummaryRow]

    @property
    def runtime_empty(self) -> bool:
        return not self.runtime_rows

    @property
    def queries_empty(self) -> bool:
        return not self.queries_rows


def _pivot(per_period: list[list], empty, total) -> tuple[SummaryRow, list[SummaryRow]]:
    """Turn one list of per-model figures per period into a row per model (aggregated
    rows only: as many as models, never records)."""
    by_model = [{item.model: item for item in items} for items in per_period]
    models = sorted({name for table in by_model for name in table})
    rows = [
        SummaryRow(model=name, cells=[table.get(name) or empty(name) for table in by_model])
        for name in models
    ]
    return SummaryRow(model="Total", cells=[total(items) for items in per_period]), rows


def usage_summaries(*, org: Organization, now: datetime, tz: str) -> UsageSummaries:
    """Daily (last 24 h), monthly (last calendar month) and yearly (last calendar year)
    worker runtime and end-user queries, total and per model (two queries per period)."""
    windows: list[Window] = [period_window(p, now=now, tz=tz) for p in PERIODS]
    runtimes = [worker_runtime_by_model(org=org, start=w.start, end=w.end) for w in windows]
    queries = [queries_by_model(org=org, start=w.start, end=w.end) for w in windows]
    runtime_total, runtime_rows = _pivot(
        runtimes,
        lambda name: ModelRuntime(model=name),
        lambda items: ModelRuntime(
            model="Total",
            runtime=sum((i.runtime for i in items), timedelta(0)),
            sessions=sum(i.sessions for i in items),
        ),
    )
    queries_total, queries_rows = _pivot(
        queries,
        lambda name: ModelUsage(model=name),
        lambda items: ModelUsage(
            model="Total",
            queries=sum(i.queries for i in items),
            input_tokens=sum(i.input_tokens for i in items),
            output_tokens=sum(i.output_tokens for i in items),
            total_tokens=sum(i.total_tokens for i in items),
            credits=sum((i.credits for i in items), ZERO),
        ),
    )
    return UsageSummaries(
        periods=[PeriodColumn(w.key, w.label, w.start, w.end) for w in windows],  # type: ignore[arg-type]
        runtime_total=runtime_total,
        runtime_rows=runtime_rows,
        queries_total=queries_total,
        queries_rows=queries_rows,
    )


# --- Session chip ---------------------------------------------------------------------


DEFAULT_WORKER_RATE_CACHE = ("usage:chip:default-worker-rate", 60)


def _default_worker_rate() -> tuple[Decimal, int] | None:
    from billing.selectors import default_worker_type

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
        rate = _default_worker_rate()
        cached = ("priced", *rate) if rate else ("unpriced",)
        cache.set(key, cached, timeout)
    if cached[0] != "priced":
        return None
    _, hourly_rate, cores = cached
    return credits * cores / hourly_rate
