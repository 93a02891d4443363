"""The usage read API.

Endpoints and fields follow the reference SDKs: the account's usage calls
(get_worker_sessions, get_queries_per_model, under /account beside billing's credits)
and the usage calls (list_llm, get_llm, get_llm_organization_summary, list_matching),
plus month-to-date tokens against the tier's allocation (GET /usage). Every read is
scoped to the caller's organization and to the projects it sees (a session: its person's;
an API key: its own project; insights/api/params.py `principal_project_ids`); figures
come from the same selectors as the usage panel, or the explorer's for some projects.
"""

from typing import Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router

from accounts.api_core import API_KEY_OR_SESSION, Principal
from billing.money import decimal_str
from core.api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, ErrorOut, not_found, paginate
from insights.api.params import (
    MAX_MILLIS,
    check_org_id,
    date_range,
    millis_range,
    principal_project_ids,
    to_millis,
)
from insights.api.schemas import (
    LLMSummaryOut,
    LLMUsageListOut,
    LLMUsageOut,
    MatchingUsageListOut,
    MonthToDateOut,
    QueriesPerModelOut,
    WorkerSessionsOut,
)
from insights.selectors.api_reads import (
    llm_summary,
    llm_usage,
    llm_usage_get,
    matching_usage,
    month_to_date_usage,
    queries_per_model,
    query_totals,
    worker_sessions_report,
)
from usage.services.retention import retention_notice

account = Router(tags=["Account"], auth=API_KEY_OR_SESSION)
usage = Router(tags=["Usage"], auth=API_KEY_OR_SESSION)

MILLIS = {"ge": 0, "le": MAX_MILLIS}
PAGE = Query(1, ge=1, description="Page number, from 1.")
PAGE_SIZE = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Items per page.")
DATE_HELP = (
    "A date (YYYY-MM-DD, the whole day in the organization's time zone) or an ISO 8601 time."
)


class APIRequest(HttpRequest):
    auth: Principal


def _org(request: APIRequest):
    return request.auth.organization


def _projects(request: APIRequest) -> frozenset[int] | None:
    return principal_project_ids(request.auth)


# --- Account ---------------------------------------------------------------------------


@account.get(
    "/worker-sessions",
    response=WorkerSessionsOut,
    url_name="worker_sessions",
    summary="Worker runtime per model, with its sessions, in a range of Unix milliseconds",
)
def worker_sessions(
    request: APIRequest,
    start_date: int = Query(..., description="Range start, Unix ms (inclusive).", **MILLIS),
    end_date: int = Query(..., description="Range end, Unix ms (exclusive).", **MILLIS),
    page: int = PAGE,
    page_size: int = PAGE_SIZE,
):
    """Each session counts for the part of it inside the range, as on the main page."""
    start, end = millis_range(start_date, end_date)
    report = worker_sessions_report(
        org=_org(request), start=start, end=end, projects=_projects(request)
    )
    meta, rows = paginate(report.sessions, page=page, page_size=page_size)
    return {
        **meta,
        "start_date": start_date,
        "end_date": end_date,
        "total_runtime_seconds": report.total_runtime.total_seconds(),
        "detail_notice": retention_notice(start=start),
        "models": [
            {
                "model": row.model,
                "runtime_seconds": row.runtime.total_seconds(),
                "sessions": row.sessions,
            }
            for row in report.runtime_by_model
        ],
        "items": [
            {
                "id": s.client_id,
                "model": s.model_name,
                "started_at": s.started_at,
                "ended_at": s.ended_at,
                "runtime_seconds": s.runtime_in_range.total_seconds(),
                "credits": decimal_str(s.credits),
            }
            for s in rows
        ],
    }


@account.get(
    "/queries-per-model",
    response=QueriesPerModelOut,
    url_name="queries_per_model",
    summary="End-user queries per model in a range of Unix milliseconds",
)
def queries_per_model_view(
    request: APIRequest,
    start_date: int = Query(..., description="Range start, Unix ms (inclusive).", **MILLIS),
    end_date: int = Query(..., description="Range end, Unix ms (exclusive).", **MILLIS),
    page: int = PAGE,
    page_size: int = PAGE_SIZE,
):
    """Queries, tokens and credits per model, most tokens first (the panel's usage by
    model); totals over all models."""
    start, end = millis_range(start_date, end_date)
    per_model = queries_per_model(
        org=_org(request), start=start, end=end, projects=_projects(request)
    )
    totals = query_totals(per_model)
    meta, rows = paginate(per_model, page=page, page_size=page_size)
    return {
        **meta,
        "start_date": to_millis(start),
        "end_date": to_millis(end),
        "total_queries": totals.queries,
        "total_tokens": totals.total_tokens,
        "total_credits": decimal_str(totals.credits),
        "items": [
            {
                "model": row.model,
                "queries": row.queries,
                "input_tokens": row.input_tokens,
                "output_tokens": row.output_tokens,
                "total_tokens": row.total_tokens,
                "credits": decimal_str(row.credits),
            }
            for row in rows
        ],
    }


# --- Usage: LLM, matching, month to date -----------------------------------------------


def _llm_row(row) -> dict:
    return {
        "id": row.pk,
        "run_id": row.client_id,
        "job_id": None,
        "user_id": row.user_id,
        "organization_id": row.organization_id,
        "run_created_at": row.occurred_at,
        "run_time": 0,
        "credits": decimal_str(row.credits),
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "model_id": row.model_name,
        "total_tokens": row.total_tokens,
        "endpoint": row.endpoint,
        "member": row.member,
    }


@usage.get(
    "",
    response=MonthToDateOut,
    url_name="month_to_date",
    summary="Month-to-date tokens against the tier's allocation, by model, with cost",
)
def month_to_date(request: APIRequest):
    """Prompt, completion and total tokens since the start of this calendar month (the
    organization's time zone), as the usage panel's token card counts them."""
    org = _org(request)
    now = timezone.now()
    report = month_to_date_usage(org=org, now=now, projects=_projects(request))
    allocation = report.allocation
    return {
        "organization_id": org.pk,
        "tier": org.tier,
        "month_start": allocation.month_start,
        "as_of": now,
        "prompt_tokens": report.totals.input_tokens,
        "completion_tokens": report.totals.output_tokens,
        "total_tokens": allocation.used,
        "allocation": allocation.allocation,
        "remaining": allocation.remaining,
        "percent_used": allocation.percent,
        "overage_allowed": org.overage_allowed,
        "cost": decimal_str(report.totals.credits),
        "models": [
            {
                "model": row.model,
                "queries": row.queries,
                "prompt_tokens": row.input_tokens,
                "completion_tokens": row.output_tokens,
                "total_tokens": row.total_tokens,
                "cost": decimal_str(row.credits),
            }
            for row in report.by_model
        ],
    }


@usage.get(
    "/llm",
    response=LLMUsageListOut,
    url_name="list_llm",
    summary="Get a list of usage statistics for a given organization",
)
def list_llm(
    request: APIRequest,
    org_id: int | None = Query(None, description="Your organization's id (another: 404)."),
    start_date: str | None = Query(None, description=DATE_HELP + " Default: start of month."),
    end_date: str | None = Query(None, description=DATE_HELP + " Default: end of today."),
    page: int = PAGE,
    page_size: int = PAGE_SIZE,
):
    """LLM usage (queries), newest first. Without dates: the start of the current month
    to the end of today, in the organization's time zone."""
    org = _org(request)
    check_org_id(org, org_id)
    start, end = date_range(
        org=org, start_date=start_date, end_date=end_date, now=timezone.now(), default_month=True
    )
    assert end is not None
    rows = llm_usage(org=org, start=start, end=end, projects=_projects(request))
    meta, rows = paginate(rows, page=page, page_size=page_size)
    items = [_llm_row(r) for r in rows]
    notice = retention_notice(start=start)
    return {**meta, "start_date": start, "end_date": end, "items": items, "detail_notice": notice}


@usage.get(
    "/llm/{id}",
    response={200: LLMUsageOut, 404: ErrorOut},
    url_name="get_llm",
    summary="Get an individual usage statistic",
)
def get_llm(request: APIRequest, id: int):  # `id`: the reference client's name
    row = llm_usage_get(org=_org(request), usage_id=id, projects=_projects(request))
    if row is None:
        raise not_found(f"no LLM usage {id}")
    return _llm_row(row)


@usage.get(
    "/llm/organization/{org_id}/summary",
    response={200: LLMSummaryOut, 404: ErrorOut},
    url_name="llm_organization_summary",
    summary="Get summarized usage statistics for a given organization",
)
def llm_organization_summary(
    request: APIRequest,
    org_id: int,
    start_date: str | None = Query(None, description=DATE_HELP + " Default: start of month."),
    end_date: str | None = Query(None, description=DATE_HELP + " Default: end of today."),
):
    org = _org(request)
    check_org_id(org, org_id)
    start, end = date_range(
        org=org, start_date=start_date, end_date=end_date, now=timezone.now(), default_month=True
    )
    assert end is not None
    totals = llm_summary(org=org, start=start, end=end, projects=_projects(request))
    return {
        "organization_id": org.pk,
        "credits": decimal_str(totals.credits),
        "start_date": start,
        "end_date": end,
        "queries": totals.queries,
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "total_tokens": totals.total_tokens,
    }


@usage.get(
    "/matching",
    response=MatchingUsageListOut,
    url_name="list_matching",
    summary="Get matching usage statistics for a given organization",
)
def list_matching(
    request: APIRequest,
    org_id: int | None = Query(None, description="Your organization's id (another: 404)."),
    task: Literal["IDR", "CDM"] | None = Query(None, description="Only this matching task."),
    start_date: str | None = Query(None, description=DATE_HELP + " Default: no lower bound."),
    end_date: str | None = Query(None, description=DATE_HELP + " Default: no upper bound."),
    page: int = PAGE,
    page_size: int = PAGE_SIZE,
):
    """Matching runs (by when they started), newest first."""
    org = _org(request)
    check_org_id(org, org_id)
    start, end = date_range(
        org=org, start_date=start_date, end_date=end_date, now=timezone.now(), default_month=False
    )
    rows = matching_usage(org=org, task=task, start=start, end=end, projects=_projects(request))
    meta, page_rows = paginate(rows, page=page, page_size=page_size)
    return {
        **meta,
        "task": task,
        "start_date": start,
        "end_date": end,
        "detail_notice": retention_notice(start=start),
        "items": [
            {
                "id": r.pk,
                "run_id": r.client_id,
                "job_id": None,
                "user_id": r.user_id,
                "organization_id": r.organization_id,
                "run_created_at": r.started_at,
                "run_time": int(r.run_time_seconds),
                "num_records": r.num_records,
                "task": r.task,
            }
            for r in page_rows
        ],
    }


# --- Session tokens --------------------------------------------------------------------
