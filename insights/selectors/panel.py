"""The usage panel's figures: the jobs overview, the timeline, API key activity,
controller load, tokens against the allocation, usage by model, endpoint and member.

Every selector takes the organization and filters by it (and by `projects`, the
projects in scope, None: all of them), and aggregates in the
database (rollups/selectors/engine.py): one query per figure, whatever the number of
keys, controllers or models. Ranges are half-open [start, end); start None means "since
the beginning". Jobs belong to a window by when they were submitted: a window's
core-hours, failures and running counts are those of the jobs submitted in it.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import (
    F,
)
from django.db.models.functions import TruncDate

from accounts.models import Organization
from core import calendar
from core.calendar import local_day_start
from rollups.models import JobBucket, JobDaily, QueryBucket, QueryDaily, QueryDimension
from rollups.selectors.coverage import RollupCoverage
from rollups.selectors.engine import (
    ZERO,
    Projects,
    as_dec,
    as_int,
    coverage_or_default,
    job_parts,
    merge_rows,
    query_parts,
    query_usage,
    union_rows,
)
from usage.models import Job, Query
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


def job_figures(figures: dict, names: tuple[str, ...] = ()) -> dict:
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
    projects: Projects = None,
) -> JobsOverview:
    """Counts and core-hours of the jobs submitted in [start, end) (one query)."""
    split = coverage_or_default(org, coverage).split(start, end)
    merged = merge_rows(union_rows(job_parts(org, split, [], projects)), [])
    figures = merged.get((), {})
    return JobsOverview(**job_figures(figures, ("on_controllers", "managed")))


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
    projects: Projects = None,
) -> dict[date, JobDay]:
    """Jobs submitted in [start, end) per calendar day in tz; days without jobs absent."""
    split = coverage_or_default(org, coverage).split(start, end, tz=tz)
    raw, rolled, minus, bucketed, minus_bucketed = job_parts(org, split, ["f_day"], projects)
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
        values = job_figures(figures)
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
    projects: Projects = None,
) -> list[JobDay]:
    """The last `days` calendar days in tz, oldest first, every day present (zeros)."""
    calendar = last_days(days, now=now, tz=tz)
    start = local_day_start(calendar[0], tz=tz)
    end = local_day_start(calendar[-1] + timedelta(days=1), tz=tz)
    per_day = jobs_by_day(
        org=org, start=start, end=end, tz=tz, coverage=coverage, projects=projects
    )
    return [value or JobDay(day=day) for day, value in dense_days(calendar, per_day, empty=None)]


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
    *,
    org: Organization,
    now: datetime,
    tz: str,
    coverage: RollupCoverage | None = None,
    projects: Projects = None,
) -> TokenAllocation:
    """Tokens of queries since the start of the calendar month in tz (one query)."""
    month_start = calendar.local_month_start(now, tz=tz).astimezone(UTC)
    split = coverage_or_default(org, coverage).split(month_start, now + timedelta(days=1))
    merged = merge_rows(union_rows(query_parts(org, split, [], projects=projects)), [])
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
    org: Organization,
    start: datetime | None,
    end: datetime,
    coverage,
    group: str,
    projects: Projects = None,
) -> list[tuple[str, dict]]:
    split = coverage_or_default(org, coverage).split(start, end)
    dimension = {"model__name": QueryDimension.MODEL}.get(group, group)
    merged = merge_rows(
        union_rows(query_parts(org, split, [group], dimension, projects)), [group], count="queries"
    )
    return [(key[0], query_usage(figures)) for key, figures in merged.items()]


def queries_by_model(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    coverage: RollupCoverage | None = None,
    projects: Projects = None,
) -> list[ModelUsage]:
    """Queries per model in [start, end), most tokens first (one query)."""
    rows = _queries_grouped(org, start, end, coverage, "model__name", projects)
    rows.sort(key=lambda item: (-item[1]["total_tokens"], item[0]))
    return [ModelUsage(model=name, **figures) for name, figures in rows]


def tokens_by_day_and_model(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    tz: str,
    coverage: RollupCoverage | None = None,
    projects: Projects = None,
) -> dict[tuple[date, str], int]:
    """Tokens per (calendar day in tz, model) in [start, end) (one query)."""
    split = coverage_or_default(org, coverage).split(start, end, tz=tz)
    group = ["f_day", "model__name"]
    bucketed, minus_bucketed, raw, rolled, minus = query_parts(org, split, group, projects=projects)
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
    projects: Projects = None,
) -> TokenTrend:
    """The window's daily tokens per model, dense (no gaps) from its first day to today."""
    per_day = tokens_by_day_and_model(
        org=org, start=start, end=end, tz=tz, coverage=coverage, projects=projects
    )
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
    projects: Projects = None,
) -> list[GroupUsage]:
    """The endpoints with the most queries in [start, end) (one query)."""
    rows = _queries_grouped(org, start, end, coverage, "endpoint", projects)
    rows.sort(key=lambda item: (-item[1]["queries"], -item[1]["total_tokens"], item[0]))
    return [GroupUsage(name=name, **figures) for name, figures in rows[:limit]]


def usage_by_member(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    limit: int = TOP_MEMBERS,
    coverage: RollupCoverage | None = None,
    projects: Projects = None,
) -> list[GroupUsage]:
    """Queries per team member in [start, end), most tokens first (one query)."""
    rows = _queries_grouped(org, start, end, coverage, "member", projects)
    rows.sort(key=lambda item: (-item[1]["total_tokens"], item[0]))
    return [GroupUsage(name=name, **figures) for name, figures in rows[:limit]]
