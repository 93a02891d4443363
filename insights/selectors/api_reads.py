"""Reads for the usage and account API.

Figures come from insights/selectors/panel.py and billing.selectors, so a program reading
the API and a person reading the usage panel see the same numbers for the same range.
This module adds what the panel does not list: the records themselves (worker sessions,
queries as LLM usage, matching runs), each selector scoped to the organization.
Ranges are half-open [start, end); start None means "since the beginning".
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import (
    BigIntegerField,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Greatest, Least

from accounts.models import Membership, Organization
from insights.selectors.panel import (
    ModelUsage,
    TokenAllocation,
    queries_by_model,
    tokens_month_to_date,
)
from insights.selectors.summaries import ModelRuntime, worker_runtime_by_model
from usage.models import MatchingRun, Query, WorkerSession

ZERO = Decimal("0")


def _member_user_id(org: Organization) -> Subquery:
    """The id of the organization member whose email a query's `member` names."""
    return Subquery(
        Membership.objects.filter(organization=org, user__email__iexact=OuterRef("member")).values(
            "user_id"
        )[:1]
    )


# --- Worker sessions -----------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSessionsReport:
    """Runtime per model in a range (the panel's figure) and the sessions behind it."""

    runtime_by_model: list[ModelRuntime]
    sessions: QuerySet[WorkerSession]

    @property
    def total_runtime(self) -> timedelta:
        return sum((row.runtime for row in self.runtime_by_model), timedelta(0))


def worker_sessions_in_range(
    *, org: Organization, start: datetime, end: datetime
) -> QuerySet[WorkerSession]:
    """Sessions overlapping [start, end), oldest first, each annotated with model_name and
    runtime_in_range: the part of it inside the range, as the panel counts it."""
    start_value = Value(start, output_field=DateTimeField())
    end_value = Value(end, output_field=DateTimeField())
    return (
        WorkerSession.objects.filter(organization=org, started_at__lt=end, ended_at__gt=start)
        .annotate(
            model_name=F("model__name"),
            runtime_in_range=ExpressionWrapper(
                Least("ended_at", end_value) - Greatest("started_at", start_value),
                output_field=DurationField(),
            ),
        )
        .order_by("started_at", "id")
    )


def worker_sessions_report(
    *, org: Organization, start: datetime, end: datetime
) -> WorkerSessionsReport:
    """Runtime per model in [start, end) with the sessions that make it up."""
    return WorkerSessionsReport(
        runtime_by_model=worker_runtime_by_model(org=org, start=start, end=end),
        sessions=worker_sessions_in_range(org=org, start=start, end=end),
    )


# --- Queries: per model, LLM usage records, summaries --------------------------------


@dataclass(frozen=True)
class QueryTotals:
    """Queries, tokens and credits summed over models."""

    queries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    credits: Decimal = ZERO


def query_totals(rows: list[ModelUsage]) -> QueryTotals:
    """Totals of per-model rows (a handful: one per model on the price list)."""
    return QueryTotals(
        queries=sum(row.queries for row in rows),
        input_tokens=sum(row.input_tokens for row in rows),
        output_tokens=sum(row.output_tokens for row in rows),
        total_tokens=sum(row.total_tokens for row in rows),
        credits=sum((row.credits for row in rows), ZERO),
    )


def queries_per_model(
    *, org: Organization, start: datetime | None, end: datetime
) -> list[ModelUsage]:
    """Queries per model in [start, end): the panel's "usage by model"."""
    return queries_by_model(org=org, start=start, end=end)


def llm_usage(*, org: Organization, start: datetime | None, end: datetime) -> QuerySet[Query]:
    """The organization's queries (LLM usage records) in [start, end), newest first, with
    model_name and user_id (the member the query was for, else a personal key's owner)."""
    rows = Query.objects.filter(organization=org, occurred_at__lt=end)
    if start is not None:
        rows = rows.filter(occurred_at__gte=start)
    return _llm_annotated(org, rows).order_by("-occurred_at", "-id")


def llm_usage_get(*, org: Organization, usage_id: int) -> Query | None:
    """One of the organization's LLM usage records by id (another organization's: None)."""
    return _llm_annotated(org, Query.objects.filter(organization=org, pk=usage_id)).first()


def _llm_annotated(org: Organization, rows: QuerySet[Query]) -> QuerySet[Query]:
    return rows.annotate(
        model_name=F("model__name"),
        user_id=Coalesce(
            _member_user_id(org), F("api_key__user_id"), output_field=BigIntegerField()
        ),
    )


def llm_summary(*, org: Organization, start: datetime | None, end: datetime) -> QueryTotals:
    """Credits, queries and tokens of [start, end): the panel's per-model figures, summed."""
    return query_totals(queries_by_model(org=org, start=start, end=end))


@dataclass(frozen=True)
class MonthToDate:
    """This calendar month's tokens against the tier's allocation, by model, with cost."""

    allocation: TokenAllocation
    by_model: list[ModelUsage]
    totals: QueryTotals


def month_to_date_usage(*, org: Organization, now: datetime) -> MonthToDate:
    """Month-to-date tokens in the organization's time zone, as the panel's token card
    shows them, with the same range broken down by model."""
    allocation = tokens_month_to_date(org=org, now=now, tz=org.time_zone or "UTC")
    # The token card counts to a day past now (records may carry a little clock skew).
    rows = queries_by_model(org=org, start=allocation.month_start, end=now + timedelta(days=1))
    return MonthToDate(allocation=allocation, by_model=rows, totals=query_totals(rows))


# --- Matching ------------------------------------------------------------------------


def matching_usage(
    *, org: Organization, task: str | None, start: datetime | None, end: datetime | None
) -> QuerySet[MatchingRun]:
    """The organization's matching runs started in [start, end), newest first, optionally
    of one task, with user_id (a personal key's owner)."""
    condition = Q(organization=org)
    if task:
        condition &= Q(task=task)
    if start is not None:
        condition &= Q(started_at__gte=start)
    if end is not None:
        condition &= Q(started_at__lt=end)
    return (
        MatchingRun.objects.filter(condition)
        .annotate(user_id=F("api_key__user_id"))
        .order_by("-started_at", "-id")
    )
