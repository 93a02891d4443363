"""Credits by model: the finance dashboard's spend by model, registered with billing
(billing/usage_sources.py), read like every usage figure (rollups/selectors/engine.py)."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import (
    CharField,
    DateField,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import TruncMonth

from accounts.models import Organization
from billing.usage_sources import ModelCredits
from rollups.models import (
    JobBucket,
    JobDaily,
    QueryBucket,
    QueryDaily,
    QueryDimension,
    WorkerBucket,
    WorkerDaily,
)
from rollups.selectors.coverage import RollupCoverage, Split
from rollups.selectors.engine import (
    ZERO,
    Projects,
    as_dec,
    coverage_or_default,
    days_q,
    raw_q,
    scope_q,
)
from usage.models import Job, Query, WorkerSession

# --- Credits by model (the finance dashboard's spend by model) ------------------------


JOBS_LABEL = "Jobs (core-hours)"


def credits_by_model(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    coverage: RollupCoverage | None = None,
    projects: Projects = None,
) -> list[ModelCredits]:
    """Credits charged for usage in [start, end) by model: queries when they occurred,
    worker sessions by their start, and jobs (one line) by their submission; largest
    first, in one query. Whole days and hours come from the rollups, the rest raw; only
    the projects in scope (None: the whole organization)."""
    split = coverage_or_default(org, coverage).split(start, end)
    rows = _credits_union(org, split, projects, lambda _kind, label, _time: label)
    return _ranked(rows)


def credits_by_month(
    *,
    org: Organization,
    start: datetime,
    end: datetime,
    coverage: RollupCoverage | None = None,
    projects: Projects = None,
) -> dict[date, Decimal]:
    """Credits charged for usage in [start, end) per calendar month in the organization's
    zone (the month's first day), by when the usage happened, in one query: Finance's
    spend by month when a project is chosen (the ledger's debits carry no project)."""
    zone = ZoneInfo(org.time_zone or "UTC")
    split = coverage_or_default(org, coverage).split(start, end, tz=org.time_zone or "UTC")

    def month_of(kind: str, _label, time_field: str):
        if kind == "rolled":
            return TruncMonth("day", output_field=DateField())
        field = "bucket" if kind == "bucketed" else time_field
        return TruncMonth(field, tzinfo=zone, output_field=DateField())

    totals: dict[date, Decimal] = {}
    for month, credits in _credits_union(org, split, projects, month_of):
        month = month if isinstance(month, date) else date.fromisoformat(str(month))
        totals[month] = totals.get(month, ZERO) + as_dec(credits)
    return totals


def _credits_union(org: Organization, split: Split, projects: Projects, label_for) -> list:
    """(label, credits) rows of one UNION ALL over every kind's raw records, rollup rows
    and bucket rows in the split; `label_for(kind, model label, time field)` gives each
    part's grouping expression (kind: raw, rolled or bucketed)."""
    org_q = scope_q(org, projects)
    days_where = days_q(split)
    buckets, minus_buckets = raw_q("bucket", split.buckets), raw_q("bucket", split.minus_buckets)
    parts: list[tuple[QuerySet, Q | None, Any, bool]] = []
    for raw, rolled, bucketed, time_field, label, rolled_q in _credit_sources():
        rolled_where = None if days_where is None else rolled_q & days_where
        bucket_where = None if buckets is None else rolled_q & buckets
        minus_where = None if minus_buckets is None else rolled_q & minus_buckets
        raw_label = label_for("raw", label, time_field)
        rolled_label = label_for("rolled", label, time_field)
        bucket_label = label_for("bucketed", label, time_field)
        parts += [
            (raw.objects.all(), raw_q(time_field, split.raw), raw_label, False),
            (rolled.objects.all(), rolled_where, rolled_label, False),
            (raw.objects.all(), raw_q(time_field, split.minus), raw_label, True),
            (bucketed.objects.all(), bucket_where, bucket_label, False),
            (bucketed.objects.all(), minus_where, bucket_label, True),
        ]
    querysets = [
        _credits_by_label(queryset, org_q & where, label, negate=negate)
        for queryset, where, label, negate in parts
        if where is not None
    ]
    if not querysets:
        return []
    return list(
        querysets[0].union(*querysets[1:], all=True).order_by().values_list("label", "f_credits")
    )


def _credit_sources() -> tuple:
    """Per kind: (record model, rollup model, bucket model, the record's time field, the
    line's label, the rollup rows to read)."""
    return (
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


def _credits_by_label(queryset: QuerySet, where: Q, label, *, negate: bool) -> QuerySet:
    """The rows' credits summed per label (negated for a part to take away)."""
    total = Value(0) - Sum("credits") if negate else Sum("credits")
    return (
        queryset.filter(where)
        .annotate(label=label)
        .values("label")
        .annotate(f_credits=total)
        .order_by()
    )


def _ranked(rows) -> list[ModelCredits]:
    """The union's rows added up per label, largest first, those with credits only."""
    totals: dict[str, Decimal] = {}
    for name, credits in rows:
        totals[name] = totals.get(name, ZERO) + as_dec(credits)
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [ModelCredits(name=name, credits=credits) for name, credits in ranked if credits]
