"""The account and usage read API, and account session tokens.

Endpoints and fields follow the reference SDKs: the account calls (get_credits_balance,
add_credits, get_worker_sessions, get_queries_per_model) and the usage calls (list_llm,
get_llm, get_llm_organization_summary, list_matching), plus month-to-date tokens
against the tier's allocation (GET /usage). Every read is scoped to the caller's
organization; figures come from the same selectors as the usage panel.
"""

import hashlib
import hmac
import json
import uuid
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from ninja import Header, Query, Router
from ninja.responses import Status
from ninja.security import django_auth

from accounts.models import Membership
from accounts.selectors import idempotency_record_get
from accounts.services import (
    SessionTokenUnusable,
    idempotency_record_save,
    session_token_issue,
    session_token_renew,
    session_token_revoke,
)
from billing.cards import CardDetails, CardError
from billing.models import PaymentMethod, PaymentStatus
from billing.money import credits_per_dollar
from billing.selectors import credit_balance, finance_overview, org_timezone, payment_methods
from billing.services import PaymentError, payment_confirm, payment_prepare
from usage.api_core import (
    API_KEY_OR_SESSION,
    SESSION_ONLY,
    APIError,
    CredentialRejected,
    Principal,
    bad_parameter,
    not_found,
)
from usage.api_params import (
    DEFAULT_PAGE_SIZE,
    MAX_MILLIS,
    MAX_PAGE_SIZE,
    check_org_id,
    date_range,
    millis_range,
    paginate,
    to_millis,
)
from usage.api_schemas import (
    AccountOut,
    AddCreditsIn,
    CreditBalanceOut,
    ErrorOut,
    IssuedSessionTokenOut,
    LLMSummaryOut,
    LLMUsageListOut,
    LLMUsageOut,
    MatchingUsageListOut,
    MonthToDateOut,
    PaymentOut,
    QueriesPerModelOut,
    SessionTokenIn,
    SessionTokenOut,
    WorkerSessionsOut,
    decimal_str,
)
from usage.api_selectors import (
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
sessions = Router(tags=["Session tokens"])

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


# --- Account ---------------------------------------------------------------------------


@account.get("", response=AccountOut, summary="Who is asking: the organization and credential")
def account_detail(request: APIRequest):
    org = _org(request)
    return {
        "organization_id": org.pk,
        "name": org.name,
        "slug": org.slug,
        "tier": org.tier,
        "time_zone": org.time_zone,
        "monthly_token_allocation": org.monthly_token_allocation,
        "credential": request.auth.kind,
    }


@account.get(
    "/credits",
    response=CreditBalanceOut,
    url_name="credits_balance",
    summary="Credit balance, estimated remaining usage time and last payment date",
)
def credits_balance(request: APIRequest):
    """What the main page's balance card shows (get_credits_balance)."""
    org = _org(request)
    overview = finance_overview(org=org)
    remaining = overview.remaining_usage_time
    last = overview.last_payment_at
    return {
        "organization_id": org.pk,
        "credits": decimal_str(overview.credit_balance),
        "estimated_remaining_usage_time": None
        if remaining is None
        else {
            "worker_type": remaining.worker_type,
            "hourly_rate": decimal_str(remaining.hourly_rate),
            "total_hours": remaining.total_hours,
            "days": remaining.days,
            "hours": remaining.hours,
        },
        "last_payment_at": last,
        "last_payment_date": last.astimezone(org_timezone(org)).date() if last else None,
    }


def _body_fingerprint(payload: AddCreditsIn) -> str:
    """A keyed hash of the request's meaning (the body may hold card details)."""
    canonical = payload.model_dump(mode="json")
    canonical["credits"] = decimal_str(payload.credits)
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hmac.new(settings.SECRET_KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


def _replay(status: int, body: dict) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Idempotent-Replayed"] = "true"
    return response


def _amount_minor(credits: Decimal) -> int:
    cents = credits / credits_per_dollar() * 100
    if cents != cents.to_integral_value(ROUND_HALF_EVEN):
        raise bad_parameter("credits", "must buy a whole number of cents")
    return int(cents)


def _payment_method(org, payment_method_id: int | None) -> PaymentMethod | None:
    methods = payment_methods(org=org)
    if payment_method_id is not None:
        method = methods.filter(pk=payment_method_id).first()
        if method is None:
            raise not_found(f"no payment method {payment_method_id}")
        return method
    account_row = getattr(org, "credit_account", None)
    preferred = getattr(account_row, "auto_recharge_method", None)
    return preferred or methods.first()


@account.post(
    "/credits",
    response={
        201: PaymentOut,
        202: PaymentOut,
        402: PaymentOut,
        403: ErrorOut,
        404: ErrorOut,
        422: ErrorOut,
    },
    url_name="add_credits",
    summary="Add credits (buy them with a card)",
)
def add_credits(
    request: APIRequest,
    payload: AddCreditsIn,
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        max_length=150,
        description=(
            "Send the same key to retry safely: the same key with the same body replays "
            "the first answer (header Idempotent-Replayed: true); with another body it is "
            "a 422. Keys are kept per organization."
        ),
    ),
):
    """Charge the organization's saved card (or the card sent) through the payment
    service, once per Idempotency-Key: 201 succeeded, 202 pending at a hosted checkout,
    402 declined or failed. Needs an owner's, admin's or billing member's session token."""
    principal = request.auth
    org = principal.organization
    if not principal.can_pay:
        raise APIError(
            403,
            "forbidden",
            "adding credits needs the session token of an owner, admin or billing member of "
            "the organization",
        )
    fingerprint = _body_fingerprint(payload)
    if idempotency_key is not None:
        idempotency_key = idempotency_key.strip()
        if not idempotency_key or not idempotency_key.isprintable():
            raise bad_parameter("Idempotency-Key", "must be 1 to 150 printable characters")
        kept = idempotency_record_get(org=org, endpoint="add_credits", key=idempotency_key)
        if kept is not None:
            if kept.request_hash != fingerprint:
                raise APIError(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was already used with a different body",
                    field="Idempotency-Key",
                )
            return _replay(kept.status_code, kept.response_body)
    amount_minor = _amount_minor(payload.credits)
    card = None
    method = None
    if payload.card is not None:
        c = payload.card
        card = CardDetails(number=c.number.replace(" ", ""), exp_month=c.exp_month,
                           exp_year=c.exp_year, cvc=c.cvc)  # fmt: skip
    else:
        method = _payment_method(org, payload.payment_method_id)
        if method is None:
            raise APIError(
                400,
                "no_payment_method",
                "no saved card: send card details, or save a card in Finance",
                field="card",
            )
    try:
        payment = payment_prepare(
            org=org,
            amount_minor=amount_minor,
            idempotency_key=f"api:{idempotency_key or uuid.uuid4().hex}",
            actor=principal.membership.user if principal.membership else None,
            card=card,
            method=method,
        )
        payment = payment_confirm(org=org, payment_id=payment.pk)
    except CardError as exc:
        raise APIError(
            400, "card_error", exc.message, field=f"card.{exc.field}" if exc.field else "card"
        ) from None
    except PaymentError as exc:
        raise APIError(400, "payment_error", str(exc), field="credits") from None
    status = {PaymentStatus.SUCCEEDED: 201, PaymentStatus.PENDING: 202}.get(payment.status, 402)
    body = {
        "payment_id": payment.pk,
        "status": payment.status,
        "amount": decimal_str(payment.amount),
        "currency": payment.currency,
        "credits": decimal_str(payment.credits),
        "credit_balance": decimal_str(credit_balance(org=org)),
        "message": payment.failure_message,
        "checkout_url": payment.redirect_url or None,
    }
    if idempotency_key is not None:
        kept = idempotency_record_save(
            org=org,
            endpoint="add_credits",
            key=idempotency_key,
            request_hash=fingerprint,
            status_code=status,
            response_body=body,
        )
        if kept.response_body != body:  # a concurrent request with this key answered first
            return _replay(kept.status_code, kept.response_body)
    return JsonResponse(body, status=status)


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
    report = worker_sessions_report(org=_org(request), start=start, end=end)
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
    per_model = queries_per_model(org=_org(request), start=start, end=end)
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
    report = month_to_date_usage(org=org, now=now)
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
    meta, rows = paginate(llm_usage(org=org, start=start, end=end), page=page, page_size=page_size)
    items = [_llm_row(r) for r in rows]
    notice = retention_notice(start=start)
    return {**meta, "start_date": start, "end_date": end, "items": items, "detail_notice": notice}


@usage.get(
    "/llm/{id}",
    response={200: LLMUsageOut, 404: ErrorOut},
    url_name="get_llm",
    summary="Get an individual usage statistic",
)
def get_llm(request: APIRequest, id: int):  # noqa: A002 - the reference's name
    row = llm_usage_get(org=_org(request), usage_id=id)
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
    totals = llm_summary(org=org, start=start, end=end)
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
    rows = matching_usage(org=org, task=task, start=start, end=end)
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


def _token_out(token) -> dict:
    return {
        "id": token.pk,
        "organization_id": token.organization_id,
        "email": token.user.email,
        "name": token.name,
        "display": token.display,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "renewed_at": token.renewed_at,
        "last_used_at": token.last_used_at,
    }


@sessions.post(
    "/session-tokens",
    auth=django_auth,
    response={201: IssuedSessionTokenOut, 403: ErrorOut, 404: ErrorOut},
    url_name="session_token_issue",
    summary="Issue an account session token (logged-in members, from the browser)",
)
def session_token_create(request: HttpRequest, payload: SessionTokenIn):
    """For a person logged in to the console (session cookie and CSRF token): a 30-day
    token for one of their organizations. The secret is in this answer only."""
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=request.user, organization__slug=payload.organization)
        .first()
    )
    if membership is None:
        raise not_found(f"no organization {payload.organization!r}")
    issued = session_token_issue(
        user=membership.user, org=membership.organization, name=payload.name
    )
    return Status(201, {**_token_out(issued.token), "token": issued.secret})


@sessions.get(
    "/session-token",
    auth=SESSION_ONLY,
    response=SessionTokenOut,
    url_name="session_token_detail",
    summary="The session token you are using: when it expires",
)
def session_token_detail(request: APIRequest):
    return _token_out(request.auth.session_token)


@sessions.post(
    "/session-token/renew",
    auth=SESSION_ONLY,
    response=SessionTokenOut,
    url_name="session_token_renew",
    summary="Renew the session token you are using for another 30 days",
)
def session_token_renew_view(request: APIRequest):
    """The same secret stays valid 30 days from now. An expired token cannot be renewed
    (its requests are 401 session_token_expired): issue a new one."""
    try:
        token = session_token_renew(token=request.auth.session_token)  # type: ignore[arg-type]
    except SessionTokenUnusable as exc:
        raise CredentialRejected("session_token_expired", str(exc)) from None
    token.user = request.auth.session_token.user  # type: ignore[union-attr]
    return _token_out(token)


@sessions.delete(
    "/session-token",
    auth=SESSION_ONLY,
    response={204: None},
    url_name="session_token_revoke",
    summary="Revoke the session token you are using",
)
def session_token_revoke_view(request: APIRequest) -> HttpResponse:
    session_token_revoke(token=request.auth.session_token)  # type: ignore[arg-type]
    return HttpResponse(status=204)
