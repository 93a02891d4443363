"""Credits by model: the finance dashboard's spend by model, registered with billing
(billing/usage_sources.py), read like every usage figure (rollups/selectors/engine.py)."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import (
    CharField,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
)

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
from rollups.selectors.coverage import RollupCoverage
from rollups.selectors.engine import ZERO, as_dec, coverage_or_default, days_q, raw_q
from usage.models import Job, Query, WorkerSession

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
    split = coverage_or_default(org, coverage).split(start, end)
    org_q = Q(organization=org)
    days_where = days_q(split)
    buckets, minus_buckets = raw_q("bucket", split.buckets), raw_q("bucket", split.minus_buckets)
    parts: list[tuple[QuerySet, Q | None, Any, bool]] = []
    for raw, rolled, bucketed, time_field, label, rolled_q in _credit_sources():
        rolled_where = None if days_where is None else rolled_q & days_where
        bucket_where = None if buckets is None else rolled_q & buckets
        minus_where = None if minus_buckets is None else rolled_q & minus_buckets
        parts += [
            (raw.objects.all(), raw_q(time_field, split.raw), label, False),
            (rolled.objects.all(), rolled_where, label, False),
            (raw.objects.all(), raw_q(time_field, split.minus), label, True),
            (bucketed.objects.all(), bucket_where, label, False),
            (bucketed.objects.all(), minus_where, label, True),
        ]
    querysets = [
        _credits_by_label(queryset, org_q & where, label, negate=negate)
        for queryset, where, label, negate in parts
        if where is not None
    ]
    if not querysets:
        return []
    rows = querysets[0].union(*querysets[1:], all=True).order_by().values_list("label", "f_credits")
    return _ranked(rows)


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
