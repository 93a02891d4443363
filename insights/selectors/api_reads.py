"""Reads for the usage and account API.

Figures come from insights/selectors/panel.py and billing.selectors, so a program reading
the API and a person reading the usage panel see the same numbers for the same range.
This module adds what the panel does not list: the records themselves (worker sessions,
queries as LLM usage, matching runs), each selector scoped to the organization.
Ranges are half-open [start, end); start None means "since the beginning".

`projects` (None: every project) is what the caller may see: a member limited to projects,
or an API key in an organization with several projects (insights/api/params.py). Their
records are those projects' only, and their per-model figures are read through the
explorer's engine, which takes a project condition on the same rollups and bucket
aggregates (the panel's selectors read the whole organization).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import (
    BigIntegerField,
    Count,
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
from billing.models import PriceModel
from core.calendar import local_month_start
from insights.selectors.panel import (
    ModelUsage,
    TokenAllocation,
    queries_by_model,
    tokens_month_to_date,
)
from insights.selectors.report_rows import Reading, report_figures
from insights.selectors.summaries import ModelRuntime, worker_runtime_by_model
from rollups.selectors.coverage import rollup_coverage
from usage.models import MatchingRun, Query, WorkerSession

Projects = frozenset[int] | None

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


def _in_projects(rows: QuerySet, projects: Projects) -> QuerySet:
    return rows if projects is None else rows.filter(project_id__in=sorted(projects))


def _by_model(
    org: Organization, projects: frozenset[int], start: datetime, end: datetime, metric: str
) -> dict[str, Decimal]:
    """{model name: the metric} over [start, end) of queries and worker sessions in the
    projects, from the explorer's engine (rollups, bucket aggregates, then records)."""
    coverage = rollup_coverage(org=org)
    reading = Reading(
        org=org,
        coverage=coverage,
        bucket="total",
        metric=metric,
        group_by=("model",),
        # Credits are every kind's: here only the queries' (jobs have no model).
        filters={"kind": ["query"]} if metric == "credits" else {},
        tz=coverage.tz,
        projects=projects,
    )
    figures = report_figures(reading, start=start, end=end, buckets=[(start, end)])
    names = dict(PriceModel.objects.values_list("pk", "name"))
    return {names.get(key[0], str(key[0])): values[0] for key, values in figures.items()}


def _queries_by_model_in(
    org: Organization, projects: frozenset[int], start: datetime | None, end: datetime
) -> list[ModelUsage]:
    """queries_by_model, of the projects only."""
    start = start or datetime(1970, 1, 1, tzinfo=end.tzinfo)
    figures = {
        metric: _by_model(org, projects, start, end, metric)
        for metric in ("queries", "input_tokens", "output_tokens", "credits")
    }
    rows = [
        ModelUsage(
            model=model,
            queries=int(queries),
            input_tokens=int(figures["input_tokens"].get(model, ZERO)),
            output_tokens=int(figures["output_tokens"].get(model, ZERO)),
            total_tokens=int(
                figures["input_tokens"].get(model, ZERO) + figures["output_tokens"].get(model, ZERO)
            ),
            credits=figures["credits"].get(model, ZERO),
        )
        for model, queries in figures["queries"].items()
        if queries
    ]
    rows.sort(key=lambda row: (-row.total_tokens, row.model))
    return rows


def worker_sessions_in_range(
    *, org: Organization, start: datetime, end: datetime, projects: Projects = None
) -> QuerySet[WorkerSession]:
    """Sessions overlapping [start, end), oldest first, each annotated with model_name and
    runtime_in_range: the part of it inside the range, as the panel counts it."""
    start_value = Value(start, output_field=DateTimeField())
    end_value = Value(end, output_field=DateTimeField())
    sessions = WorkerSession.objects.filter(
        organization=org, started_at__lt=end, ended_at__gt=start
    )
    return (
        _in_projects(sessions, projects)
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
    *, org: Organization, start: datetime, end: datetime, projects: Projects = None
) -> WorkerSessionsReport:
    """Runtime per model in [start, end) with the sessions that make it up."""
    sessions = worker_sessions_in_range(org=org, start=start, end=end, projects=projects)
    if projects is None:
        runtime = worker_runtime_by_model(org=org, start=start, end=end)
    else:
        hours = _by_model(org, projects, start, end, "worker_runtime")
        # Sessions that ran in the range, per model (as the panel counts them: those
        # overlapping it).
        counts = dict(sessions.values_list("model__name").annotate(n=Count("id")).order_by())
        runtime = sorted(
            (
                ModelRuntime(
                    model=model,
                    runtime=timedelta(seconds=float(value * 3600)),
                    sessions=counts.get(model, 0),
                )
                for model, value in hours.items()
            ),
            key=lambda r: (-r.runtime, r.model),
        )
    return WorkerSessionsReport(runtime_by_model=runtime, sessions=sessions)


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
    *, org: Organization, start: datetime | None, end: datetime, projects: Projects = None
) -> list[ModelUsage]:
    """Queries per model in [start, end): the panel's "usage by model"."""
    if projects is not None:
        return _queries_by_model_in(org, projects, start, end)
    return queries_by_model(org=org, start=start, end=end)


def llm_usage(
    *, org: Organization, start: datetime | None, end: datetime, projects: Projects = None
) -> QuerySet[Query]:
    """The organization's queries (LLM usage records) in [start, end), newest first, with
    model_name and user_id (the member the query was for, else a personal key's owner)."""
    rows = _in_projects(Query.objects.filter(organization=org, occurred_at__lt=end), projects)
    if start is not None:
        rows = rows.filter(occurred_at__gte=start)
    return _llm_annotated(org, rows).order_by("-occurred_at", "-id")


def llm_usage_get(*, org: Organization, usage_id: int, projects: Projects = None) -> Query | None:
    """One of the organization's LLM usage records by id (another organization's, or
    another project's than those given: None)."""
    rows = _in_projects(Query.objects.filter(organization=org, pk=usage_id), projects)
    return _llm_annotated(org, rows).first()


def _llm_annotated(org: Organization, rows: QuerySet[Query]) -> QuerySet[Query]:
    return rows.annotate(
        model_name=F("model__name"),
        user_id=Coalesce(
            _member_user_id(org), F("api_key__user_id"), output_field=BigIntegerField()
        ),
    )


def llm_summary(
    *, org: Organization, start: datetime | None, end: datetime, projects: Projects = None
) -> QueryTotals:
    """Credits, queries and tokens of [start, end): the panel's per-model figures, summed."""
    return query_totals(queries_per_model(org=org, start=start, end=end, projects=projects))


@dataclass(frozen=True)
class MonthToDate:
    """This calendar month's tokens against the tier's allocation, by model, with cost."""

    allocation: TokenAllocation
    by_model: list[ModelUsage]
    totals: QueryTotals


def month_to_date_usage(
    *, org: Organization, now: datetime, projects: Projects = None
) -> MonthToDate:
    """Month-to-date tokens in the organization's time zone, as the panel's token card
    shows them, with the same range broken down by model.

    Of some projects only: their tokens, and no allocation (None): the tier's allocation
    is the organization's, and what is left of it would tell the other projects' use."""
    if projects is not None:
        month_start = local_month_start(now, tz=org.time_zone or "UTC").astimezone(UTC)
        rows = _queries_by_model_in(org, projects, month_start, now + timedelta(days=1))
        totals = query_totals(rows)
        allocation = TokenAllocation(
            month_start=month_start, used=totals.total_tokens, allocation=None
        )
        return MonthToDate(allocation=allocation, by_model=rows, totals=totals)
    allocation = tokens_month_to_date(org=org, now=now, tz=org.time_zone or "UTC")
    # The token card counts to a day past now (records may carry a little clock skew).
    rows = queries_by_model(org=org, start=allocation.month_start, end=now + timedelta(days=1))
    return MonthToDate(allocation=allocation, by_model=rows, totals=query_totals(rows))


# --- Matching ------------------------------------------------------------------------


def matching_usage(
    *,
    org: Organization,
    task: str | None,
    start: datetime | None,
    end: datetime | None,
    projects: Projects = None,
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
        _in_projects(MatchingRun.objects.filter(condition), projects)
        .annotate(user_id=F("api_key__user_id"))
        .order_by("-started_at", "-id")
    )
