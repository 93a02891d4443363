"""Reads for the usage panel and the main page's usage summaries.

Every selector takes the organization and filters by it, and aggregates in the
database: one query per figure, whatever the number of keys, controllers or models.
Ranges are half-open [start, end); start None means "since the beginning". Each
figure has its own module-level function taking (org, start, end), so the rollup
work can answer closed days from rollup tables behind the same signatures.

Jobs belong to a window by when they were submitted: a window's core-hours, failures
and running counts are those of the jobs submitted in it.

Rollups: each figure is one query, a UNION ALL of an aggregate over the clean rollup
rows inside the range (day rows of whole days, hour rows of whole finished hours) and an
aggregate over the per-minute bucket aggregates of the rest (the current hour, partial
edge hours, days and hours not rolled up or dirty; usage/services/aggregates.py), with
raw records only for what lies before the buckets' horizon and is not rolled up (see
usage/coverage.py, which also says how a range edge inside a minute is read), summed
here per group (aggregated rows only, never records). So a page costs about the same at ten
million records as at ten thousand. Callers pass one `coverage` per page (one query);
without it each selector looks it up itself.
"""

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    CharField,
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

from accounts import calendar
from accounts.calendar import local_day_start
from accounts.models import APIKeyKind, Organization, Tier
from billing.selectors import default_worker_type
from billing.usage_sources import ModelCredits
from usage import ratelimit
from usage.models import (
    Controller,
    Job,
    JobBucket,
    JobDaily,
    JobStatus,
    Query,
    QueryBucket,
    QueryDaily,
    QueryDimension,
    RateLimitRefusal,
    WorkerBucket,
    WorkerDaily,
    WorkerSession,
    controller_online_window,
)
from usage.selectors.coverage import Interval, RollupCoverage, Split, rollup_coverage
from usage.windows import PERIODS, Window, days_between, dense_days, last_days, period_window

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


# --- Rollups and raw records, one UNION ALL per figure -------------------------------


def _coverage(org: Organization, coverage: RollupCoverage | None) -> RollupCoverage:
    return coverage if coverage is not None else rollup_coverage(org=org)


def _raw_q(field_name: str, intervals: list[Interval]) -> Q | None:
    """Records whose `field_name` falls in one of the raw intervals (None: none)."""
    q: Q | None = None
    for lo, hi in intervals:
        part = Q()
        if lo is not None:
            part &= Q(**{f"{field_name}__gte": lo})
        if hi is not None:
            part &= Q(**{f"{field_name}__lt": hi})
        q = part if q is None else q | part
    return q


def _days_q(split: Split) -> Q | None:
    """The rollup rows a split reads: whole-day rows of its day runs, hour rows of its
    hour runs (None: none)."""
    q: Q | None = None
    for first, end in split.days:
        part = Q(day__gte=first, day__lt=end, hour__isnull=True)
        q = part if q is None else q | part
    for day, first_hour, end_hour in split.hours:
        part = Q(day=day, hour__gte=first_hour, hour__lt=end_hour)
        q = part if q is None else q | part
    return q


def _union(parts: list[tuple[QuerySet, Q | None, list, dict]]) -> list[dict]:
    """Rows of every part that has something to read, as one UNION ALL query.

    A part is (queryset, filter, group-by expressions by name order, aggregates); every
    part names its columns alike (f_<name>), so the union lines up.
    """
    querysets = []
    for queryset, where, group, aggregates in parts:
        if where is None:
            continue
        qs = queryset.filter(where)
        qs = qs.values(*group) if group else qs.annotate(f_all=Value(1)).values("f_all")
        querysets.append(qs.annotate(**aggregates).order_by())
    if not querysets:
        return []
    if len(querysets) == 1:
        return list(querysets[0])
    # Django 6.1 gives a combined query its model's default ordering: drop it.
    return list(querysets[0].union(*querysets[1:], all=True).order_by())


def _merge(
    rows: list[dict],
    group: list[str],
    maxima: tuple[str, ...] = ("last_at",),
    count: str | None = None,
) -> dict[tuple, dict]:
    """Sum the parts' rows per group (None counts as nothing; `maxima` take the max).

    With `count`, groups whose count sums to zero are dropped: a day read from its
    rollup minus its records before the window leaves such groups behind.
    """
    merged: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(row[g] for g in group)
        into = merged.setdefault(key, {})
        for name, value in row.items():
            if name in group or name == "f_all" or not name.startswith("f_"):
                continue
            name = name[2:]
            if value is None:
                into.setdefault(name, None)
                continue
            old = into.get(name)
            if old is None:
                into[name] = value
            elif name in maxima:
                into[name] = max(old, value)
            else:
                into[name] = old + value
    if count is not None:
        merged = {key: f for key, f in merged.items() if _int(f.get(count)) != 0}
    return merged


def _or_never(q: Q | None) -> Q:
    # Not `q or _NEVER`: an empty Q (no bounds: everything) is falsy.
    return _NEVER if q is None else q


def _int(value) -> int:
    return int(value or 0)


def _dec(value) -> Decimal:
    return ZERO if value is None else Decimal(value)


_BYOC = Q(controller__isnull=False)
# A filter no row passes that still compiles (an empty IN would drop the whole query).
_NEVER = Q(pk__isnull=True)


def _negated(aggregates: dict) -> dict:
    """The same figures taken off (maxima become empty): the `minus` part of a split."""
    out = {}
    for name, aggregate in aggregates.items():
        if isinstance(aggregate, Max):
            out[name] = Max(aggregate.source_expressions[0], filter=_NEVER)
        else:
            out[name] = Value(0) - aggregate
    return out


def _job_parts(org: Organization, split: Split, group: list[str]) -> list:
    """The raw Job and rollup JobDaily parts of the job figures, grouped alike."""
    raw = {
        "f_submitted": Count("id"),
        "f_completed": Count("id", filter=Q(status=JobStatus.COMPLETED)),
        "f_running": Count("id", filter=Q(status=JobStatus.RUNNING)),
        "f_failed": Count("id", filter=Q(status=JobStatus.FAILED)),
        "f_cancelled": Count("id", filter=Q(status=JobStatus.CANCELLED)),
        "f_on_controllers": Count("id", filter=_BYOC),
        "f_managed": Count("id", filter=~_BYOC),
        "f_core_hours_managed": Sum("core_hours", filter=~_BYOC),
        "f_core_hours_byoc": Sum("core_hours", filter=_BYOC),
        "f_wasted_credits": Sum("credits", filter=_FAILED),
        "f_wasted_core_hours": Sum("core_hours", filter=_FAILED),
        "f_last_at": Max("submitted_at"),
    }
    rolled = {
        "f_submitted": Sum("submitted"),
        "f_completed": Sum("completed"),
        "f_running": Sum("running"),
        "f_failed": Sum("failed"),
        "f_cancelled": Sum("cancelled"),
        "f_on_controllers": Sum("submitted", filter=_BYOC),
        "f_managed": Sum("submitted", filter=~_BYOC),
        "f_core_hours_managed": Sum("core_hours", filter=~_BYOC),
        "f_core_hours_byoc": Sum("core_hours", filter=_BYOC),
        "f_wasted_credits": Sum("wasted_credits"),
        "f_wasted_core_hours": Sum("wasted_core_hours"),
        "f_last_at": Max("last_submitted_at"),
    }
    if split.trimmed is not None:
        day, start = split.trimmed
        rolled["f_last_at"] = Max(
            "last_submitted_at", filter=~Q(day=day) | Q(last_submitted_at__gte=start)
        )
    org_q = Q(organization=org)
    raw_where = _raw_q("submitted_at", split.raw)
    days_where = _days_q(split)
    minus_where = _raw_q("submitted_at", split.minus)
    bucketed = {**rolled, "f_last_at": Max("last_submitted_at")}
    # A job's status move can leave a bucket row at zero jobs (and an old last time).
    live = org_q & ~Q(submitted=0)
    return [
        (Job.objects.all(), None if raw_where is None else org_q & raw_where, group, raw),
        (
            JobDaily.objects.all(),
            None if days_where is None else org_q & days_where,
            group,
            rolled,
        ),
        (
            Job.objects.all(),
            None if minus_where is None else org_q & minus_where,
            group,
            _negated(raw),
        ),
        *_bucket_parts(JobBucket.objects.all(), live, split, group, bucketed),
    ]


def _bucket_parts(queryset: QuerySet, where: Q, split: Split, group: list, aggregates: dict):
    """The bucket-aggregate parts of a split: its bucket intervals, and its `minus` ones
    taken off."""
    inside = _raw_q("bucket", split.buckets)
    minus = _raw_q("bucket", split.minus_buckets)
    return [
        (queryset, None if inside is None else where & inside, group, aggregates),
        (queryset, None if minus is None else where & minus, group, _negated(aggregates)),
    ]


def _query_parts(
    org: Organization, split: Split, group: list[str], dimension: str = QueryDimension.MODEL
) -> list:
    """The raw Query and rollup QueryDaily parts of the query figures, grouped alike; the
    rollup side reads the rows of `dimension` (per model ones also give totals)."""
    raw = {
        "f_queries": Count("id"),
        "f_input_tokens": Sum("input_tokens"),
        "f_output_tokens": Sum("output_tokens"),
        "f_total_tokens": Sum("total_tokens"),
        "f_credits": Sum("credits"),
    }
    rolled = {
        "f_queries": Sum("queries"),
        "f_input_tokens": Sum("input_tokens"),
        "f_output_tokens": Sum("output_tokens"),
        "f_total_tokens": Sum("total_tokens"),
        "f_credits": Sum("credits"),
    }
    org_q = Q(organization=org)
    raw_where = _raw_q("occurred_at", split.raw)
    days_where = _days_q(split)
    minus_where = _raw_q("occurred_at", split.minus)
    bucket_where = org_q & Q(dimension=dimension)
    return [
        *_bucket_parts(QueryBucket.objects.all(), bucket_where, split, group, rolled),
        (Query.objects.all(), None if raw_where is None else org_q & raw_where, group, raw),
        (
            QueryDaily.objects.all(),
            None if days_where is None else org_q & Q(dimension=dimension) & days_where,
            group,
            rolled,
        ),
        (
            Query.objects.all(),
            None if minus_where is None else org_q & minus_where,
            group,
            _negated(raw),
        ),
    ]


def _query_usage(figures: dict) -> dict:
    return {
        "queries": _int(figures.get("queries")),
        "input_tokens": _int(figures.get("input_tokens")),
        "output_tokens": _int(figures.get("output_tokens")),
        "total_tokens": _int(figures.get("total_tokens")),
        "credits": _dec(figures.get("credits")),
    }


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


_JOB_COUNTS = ("submitted", "completed", "running", "failed", "cancelled")
_JOB_AMOUNTS = ("core_hours_managed", "core_hours_byoc", "wasted_credits", "wasted_core_hours")


def _job_figures(figures: dict, names: tuple[str, ...] = ()) -> dict:
    out = {name: _int(figures.get(name)) for name in (*_JOB_COUNTS, *names)}
    out.update({name: _dec(figures.get(name)) for name in _JOB_AMOUNTS})
    return out


def jobs_overview(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    coverage: RollupCoverage | None = None,
) -> JobsOverview:
    """Counts and core-hours of the jobs submitted in [start, end) (one query)."""
    split = _coverage(org, coverage).split(start, end)
    merged = _merge(_union(_job_parts(org, split, [])), [])
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
    split = _coverage(org, coverage).split(start, end, tz=tz)
    raw, rolled, minus, bucketed, minus_bucketed = _job_parts(org, split, ["f_day"])
    day_of = TruncDate("submitted_at", tzinfo=ZoneInfo(tz))
    bucket_day = TruncDate("bucket", tzinfo=ZoneInfo(tz))
    parts = [
        (Job.objects.annotate(f_day=day_of), *raw[1:]),
        (JobDaily.objects.annotate(f_day=F("day")), *rolled[1:]),
        (Job.objects.annotate(f_day=day_of), *minus[1:]),
        (JobBucket.objects.annotate(f_day=bucket_day), *bucketed[1:]),
        (JobBucket.objects.annotate(f_day=bucket_day), *minus_bucketed[1:]),
    ]
    merged = _merge(_union(parts), ["f_day"], count="submitted")
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
    split = _coverage(org, coverage).split(start, end)
    merged = _merge(_union(_job_parts(org, split, _KEY_FIELDS)), _KEY_FIELDS, count="submitted")
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
    cover = _coverage(org, coverage)
    window, ever = cover.split(start, end), cover.split(None, None)
    org_q = Q(organization=org, controller__isnull=False)
    raw_window, raw_ever = _raw_q("submitted_at", window.raw), _raw_q("submitted_at", ever.raw)
    days_window, days_ever = _days_q(window), _days_q(ever)
    # The window's hour rows at its edges lie inside the all-time split's clean days.
    days_read = days_ever if days_window is None else _or_never(days_ever) | days_window
    minus_where = _raw_q("submitted_at", window.minus)
    # An empty Q is "no bounds"; `Q(...) | Q()` would drop it, so it is tested first.
    raw_window, raw_ever = _or_never(raw_window), _or_never(raw_ever)
    days_window = _or_never(days_window)
    b_window = _or_never(_raw_q("bucket", window.buckets))
    b_ever = _or_never(_raw_q("bucket", ever.buckets))
    b_minus = _raw_q("bucket", window.minus_buckets)
    live = org_q & ~Q(submitted=0)
    rows = _union(
        [
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
                    "f_last_at": Max("last_submitted_at", filter=_NEVER),
                },
            ),
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
                    "f_last_at": Max("last_submitted_at", filter=_or_never(days_ever)),
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
                    "f_last_at": Max("submitted_at", filter=_NEVER),
                },
            ),
        ]
    )
    jobs = _merge(rows, ["controller_id"])
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
                handled=_int(figures.get("handled")),
                running=_int(figures.get("running")),
                completed=_int(figures.get("completed")),
                core_hours=_dec(figures.get("core_hours")),
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
    split = _coverage(org, coverage).split(month_start, now + timedelta(days=1))
    merged = _merge(_union(_query_parts(org, split, [])), [])
    used = _int(merged.get((), {}).get("total_tokens"))
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


def _queries_grouped(
    org: Organization, start: datetime | None, end: datetime, coverage, group: str
) -> list[tuple[str, dict]]:
    split = _coverage(org, coverage).split(start, end)
    dimension = {"model__name": QueryDimension.MODEL}.get(group, group)
    merged = _merge(_union(_query_parts(org, split, [group], dimension)), [group], count="queries")
    return [(key[0], _query_usage(figures)) for key, figures in merged.items()]


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
    split = _coverage(org, coverage).split(start, end, tz=tz)
    group = ["f_day", "model__name"]
    bucketed, minus_bucketed, raw, rolled, minus = _query_parts(org, split, group)
    day_of = TruncDate("occurred_at", tzinfo=ZoneInfo(tz))
    bucket_day = TruncDate("bucket", tzinfo=ZoneInfo(tz))
    parts = [
        (Query.objects.annotate(f_day=day_of), *raw[1:]),
        (QueryDaily.objects.annotate(f_day=F("day")), *rolled[1:]),
        (Query.objects.annotate(f_day=day_of), *minus[1:]),
        (QueryBucket.objects.annotate(f_day=bucket_day), *bucketed[1:]),
        (QueryBucket.objects.annotate(f_day=bucket_day), *minus_bucketed[1:]),
    ]
    merged = _merge(_union(parts), group, count="queries")
    return {
        (_as_date(day), model): _int(figures.get("total_tokens"))
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


# --- Credits by model (the finance dashboard's spend by model) ------------------------


JOBS_LABEL = "Jobs (core-hours)"


def credits_by_model(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    coverage: RollupCoverage | None = None,
) -> list[ModelCredits]:
    """Credits charged for usage in [start, end) by model: queries when they occurred,
    worker sessions by their start, and jobs (one line) by their submission; largest
    first, in one query. Whole days and hours come from the rollups, the rest raw."""
    split = _coverage(org, coverage).split(start, end)
    org_q = Q(organization=org)
    days_where = _days_q(split)
    querysets = []

    def part(queryset: QuerySet, where: Q | None, label, *, negate: bool = False) -> None:
        if where is None:
            return
        total = Value(0) - Sum("credits") if negate else Sum("credits")
        querysets.append(
            queryset.filter(org_q & where)
            .annotate(label=label)
            .values("label")
            .annotate(f_credits=total)
            .order_by()
        )

    sources = (
        (
            Query,
            QueryDaily,
            QueryBucket,
            "occurred_at",
            F("model__name"),
            Q(dimension=QueryDimension.MODEL),
        ),
        (WorkerSession, WorkerDaily, WorkerBucket, "started_at", F("model__name"), Q()),
        (
            Job,
            JobDaily,
            JobBucket,
            "submitted_at",
            Value(JOBS_LABEL, output_field=CharField()),
            Q(),
        ),
    )
    buckets, minus_buckets = _raw_q("bucket", split.buckets), _raw_q("bucket", split.minus_buckets)
    for raw, rolled, bucketed, time_field, label, rolled_q in sources:
        part(raw.objects.all(), _raw_q(time_field, split.raw), label)
        part(rolled.objects.all(), None if days_where is None else rolled_q & days_where, label)
        part(raw.objects.all(), _raw_q(time_field, split.minus), label, negate=True)
        part(bucketed.objects.all(), None if buckets is None else rolled_q & buckets, label)
        part(
            bucketed.objects.all(),
            None if minus_buckets is None else rolled_q & minus_buckets,
            label,
            negate=True,
        )
    if not querysets:
        return []
    rows = querysets[0].union(*querysets[1:], all=True).order_by().values_list("label", "f_credits")
    totals: dict[str, Decimal] = {}
    for name, credits in rows:
        totals[name] = totals.get(name, ZERO) + _dec(credits)
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [ModelCredits(name=name, credits=credits) for name, credits in ranked if credits]


# --- Main page: worker runtime and end-user queries per period ------------------------


@dataclass(frozen=True)
class ModelRuntime:
    """A model's worker runtime inside a range (sessions clipped to it)."""

    model: str
    runtime: timedelta = timedelta(0)
    sessions: int = 0


def _clipped(lo: datetime | None, hi: datetime | None) -> ExpressionWrapper:
    """A session's duration inside [lo, hi)."""
    at = DateTimeField()
    end = F("ended_at") if hi is None else Least("ended_at", Value(hi, output_field=at))
    begin = (
        F("started_at")
        if lo is None
        else Greatest("started_at", Value(lo, output_field=DateTimeField()))
    )
    return ExpressionWrapper(end - begin, output_field=DurationField())


def _overlaps(lo: datetime | None, hi: datetime | None) -> Q:
    """Sessions overlapping [lo, hi), or starting in it (a zero-length session counts
    where it starts): two index range scans, by end and by start."""
    q = Q()
    if hi is not None:
        q &= Q(started_at__lt=hi)
    if lo is not None:
        q &= Q(ended_at__gt=lo) | Q(started_at__gte=lo)
    return q


def worker_runtime_by_model(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    coverage: RollupCoverage | None = None,
) -> list[ModelRuntime]:
    """Worker runtime per model within [start, end): each session counts for the part of
    it inside the range (a session across midnight counts in both days), and is counted
    once if it ran in the range (or, zero-length, started in it). One query.

    Rolled-up days give their clipped runtime and the sessions started on them; the
    sessions already running at the range's start come from the first day's carried-in
    figure when the range starts on a clean day, else from the raw records.
    """
    split = _coverage(org, coverage).split(start, end, complement=False)
    raw_aggregates: dict = {}
    raw_where: Q | None = None
    for n, (lo, hi) in enumerate(split.raw):
        overlap = _overlaps(lo, hi)
        raw_where = overlap if raw_where is None else raw_where | overlap
        raw_aggregates[f"f_runtime_{n}"] = Sum(_clipped(lo, hi), filter=overlap)
        started = Q()
        if lo is not None:
            started &= Q(started_at__gte=lo)
        if hi is not None:
            started &= Q(started_at__lt=hi)
        raw_aggregates[f"f_sessions_{n}"] = Count("id", filter=started)
    first, first_hour = split.first_day_at_start, split.first_hour_at_start
    carried_at = split.bucket_start if first is None and first_hour is None else None
    carried_raw = start is not None and first is None and first_hour is None and not carried_at
    carried = Q(started_at__lt=start, ended_at__gt=start) if carried_raw else _NEVER
    raw_aggregates["f_carried"] = Count("id", filter=carried)
    # Both parts need the same columns: pad the shorter with empty sums.
    width = max(len(split.raw), 1)
    rolled: dict = {}
    for n in range(width):
        rolled[f"f_runtime_{n}"] = Sum("runtime") if n == 0 else Sum("runtime", filter=_NEVER)
        rolled[f"f_sessions_{n}"] = Sum("sessions_started") if n == 0 else Value(0)
    rolled["f_carried"] = Value(0)
    if first is not None:
        rolled["f_carried"] = Sum("sessions_carried_in", filter=Q(day=first, hour__isnull=True))
    elif first_hour is not None:
        day, hour = first_hour
        rolled["f_carried"] = Sum("sessions_carried_in", filter=Q(day=day, hour=hour))
    days_where = _days_q(split)
    org_q = Q(organization=org)
    inside = _or_never(_raw_q("bucket", split.buckets))
    bucketed: dict = {}
    for n in range(width):
        bucketed[f"f_runtime_{n}"] = Sum("runtime", filter=inside if n == 0 else _NEVER)
        bucketed[f"f_sessions_{n}"] = Sum("sessions_started", filter=inside) if n == 0 else Value(0)
    at_start = _NEVER if carried_at is None else Q(bucket=carried_at)
    bucketed["f_carried"] = Sum("sessions_carried_in", filter=at_start)
    bucket_where = None if not split.buckets and carried_at is None else inside | at_start
    rows = _union(
        [
            (
                WorkerBucket.objects.all(),
                None if bucket_where is None else org_q & bucket_where,
                ["model__name"],
                bucketed,
            ),
            (
                WorkerSession.objects.all(),
                None if raw_where is None else org_q & raw_where,
                ["model__name"],
                raw_aggregates,
            ),
            (
                WorkerDaily.objects.all(),
                None if days_where is None else org_q & days_where,
                ["model__name"],
                rolled,
            ),
        ]
    )
    runtimes: dict[str, list] = {}
    for row in rows:
        totals = runtimes.setdefault(row["model__name"], [timedelta(0), 0])
        for name, value in row.items():
            if value is None or not name.startswith("f_"):
                continue
            if name.startswith("f_runtime_"):
                if not isinstance(value, timedelta):  # SQLite: microseconds
                    value = timedelta(microseconds=value)
                totals[0] += value
            else:
                totals[1] += int(value)
    result = [
        ModelRuntime(model=name, runtime=runtime, sessions=sessions)
        for name, (runtime, sessions) in runtimes.items()
    ]
    result.sort(key=lambda r: (-r.runtime, r.model))
    return result


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


def usage_summaries(
    *, org: Organization, now: datetime, tz: str, coverage: RollupCoverage | None = None
) -> UsageSummaries:
    """Daily (last 24 h), monthly (last calendar month) and yearly (last calendar year)
    worker runtime and end-user queries, total and per model (two queries per period,
    and one for the rollup coverage)."""
    coverage = _coverage(org, coverage)
    windows: list[Window] = [period_window(p, now=now, tz=tz) for p in PERIODS]
    runtimes = [
        worker_runtime_by_model(org=org, start=w.start, end=w.end, coverage=coverage)
        for w in windows
    ]
    queries = [
        queries_by_model(org=org, start=w.start, end=w.end, coverage=coverage) for w in windows
    ]
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
