"""The usage write API: batch ingestion, the jobs endpoints and controller heartbeats.

Authenticated by `Authorization: Bearer <API key>` (heartbeats: the controller's token).
Every answer is JSON; every answer to an authenticated key carries the
X-RateLimit-{Limit,Remaining,Reset}-{RPM,TPM} headers.
"""

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accounts.models import APIKey
from accounts.selectors import apikey_for_secret
from accounts.services import apikey_mark_used
from billing.services import InsufficientCredits, LedgerError
from usage.models import Job
from usage.ratelimit import ratelimit_record_refusal, ratelimit_request, ratelimit_tokens
from usage.selectors import controller_for_token, job_get
from usage.services.controllers import controller_heartbeat
from usage.services.ingest import MAX_BATCH_RECORDS, usage_records_ingest
from usage.services.jobs import JobInvalid, JobTransitionIllegal, job_submit, job_transition


class APIRequest(HttpRequest):
    api_key: APIKey
    tokens_used: int


def error(status: int, code: str, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": code, "message": message, **extra}, status=status)


def _bearer(request: HttpRequest) -> str:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def _unauthorized(message: str) -> JsonResponse:
    response = error(401, "invalid_api_key", message)
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def api_view(*methods: str) -> Callable:
    """Method check, API-key auth (401), rate limits (429) and their headers on every answer."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = error(405, "method_not_allowed", f"use {' or '.join(methods)}")
                response["Allow"] = ", ".join(methods)
                return response
            secret = _bearer(request)
            if not secret:
                return _unauthorized("send your API key as 'Authorization: Bearer <key>'")
            key = apikey_for_secret(secret=secret)
            if key is None:
                return _unauthorized("unknown API key")
            if key.is_revoked:
                return _unauthorized("this API key was revoked")
            state = ratelimit_request(key=key)
            if state.limited:
                ratelimit_record_refusal(key=key)
                response = error(
                    429,
                    "rate_limited",
                    "rate limit reached for this API key; retry after the window resets",
                )
                response["Retry-After"] = str(state.retry_after)
            else:
                apikey_mark_used(key=key)
                request.api_key = key  # type: ignore[attr-defined]
                request.tokens_used = 0  # type: ignore[attr-defined]
                response = view(request, *args, **kwargs)
                state = ratelimit_tokens(key=key, state=state, tokens=request.tokens_used)  # type: ignore[attr-defined]
            for header, value in state.headers().items():
                response[header] = value
            return response

        return wrapper

    return decorator


def _json_body(request: HttpRequest) -> tuple[Any, JsonResponse | None]:
    try:
        body = request.body
    except RequestDataTooBig:
        return None, error(413, "too_large", "request body too large")
    if not body:
        return {}, None
    try:
        return json.loads(body), None
    except (ValueError, UnicodeDecodeError):
        return None, error(400, "invalid_json", "the body is not valid JSON")


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.client_id,
        "status": job.status,
        "cores": job.cores,
        "controller": job.controller.name if job.controller else None,
        "compute": "managed" if job.is_managed else "controller",
        "submitted_at": _iso(job.submitted_at),
        "started_at": _iso(job.started_at),
        "ended_at": _iso(job.ended_at),
        "core_hours": format(job.core_hours.normalize(), "f"),
        "credits": format(job.credits.normalize(), "f"),
    }


@api_view("POST")
def usage_records(request: APIRequest) -> HttpResponse:
    """POST /api/v1/usage/records: a batch of up to 1,000 records (DESIGN.md wire shape)."""
    body, problem = _json_body(request)
    if problem:
        return problem
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list):
        return error(400, "invalid_batch", 'send {"records": [...]}')
    if len(records) > MAX_BATCH_RECORDS:
        return error(
            400,
            "too_many_records",
            f"at most {MAX_BATCH_RECORDS} records per batch, got {len(records)}",
        )
    key = request.api_key
    try:
        result = usage_records_ingest(org=key.organization, records=records, api_key=key)
    except LedgerError as exc:  # the balance moved under a concurrent adjustment: retry
        return error(409, "balance_changed", str(exc))
    request.tokens_used = result.tokens
    payload = result.as_dict()
    if result.allocation_exhausted:
        payload["error"] = "token_allocation_exhausted"
        payload["message"] = (
            "this organization's monthly token allocation is used up and its tier allows no "
            "overage; queries over it were refused (see rejected, field 'tokens')"
        )
        response = JsonResponse(payload, status=429)
        if result.allocation_resets_at is not None:
            wait = (result.allocation_resets_at - timezone.now()).total_seconds()
            response["Retry-After"] = str(max(1, math.ceil(wait)))
        return response
    return JsonResponse(payload)


@api_view("POST")
def jobs_submit(request: APIRequest) -> HttpResponse:
    """POST /api/v1/jobs: submit a job (a job record; status defaults to submitted)."""
    body, problem = _json_body(request)
    if problem:
        return problem
    if not isinstance(body, dict):
        return error(400, "invalid_job", "send a JSON object")
    submitted = job_submit(org=request.api_key.organization, api_key=request.api_key, record=body)
    if submitted.rejection is not None:
        r = submitted.rejection
        return error(400, "invalid_job", f"{r.field}: {r.error}", field=r.field)
    assert submitted.job is not None
    return JsonResponse(job_json(submitted.job), status=201 if submitted.created else 200)


@api_view("GET")
def jobs_detail(request: APIRequest, client_id: str) -> HttpResponse:
    """GET /api/v1/jobs/<id>: the job's current state."""
    job = job_get(org=request.api_key.organization, client_id=client_id)
    if job is None:
        return error(404, "not_found", f"no job {client_id!r}")
    return JsonResponse(job_json(job))


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise JobInvalid("at", "must be an ISO 8601 time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise JobInvalid("at", "must be an ISO 8601 time, e.g. 2026-11-20T10:00:00Z") from None
    if parsed.tzinfo is None:
        raise JobInvalid("at", "must carry a time zone")
    return parsed


def _parse_core_hours(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JobInvalid("core_hours", "must be a number")
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        raise JobInvalid("core_hours", "must be a number") from None
    if not parsed.is_finite() or parsed < 0:
        raise JobInvalid("core_hours", "must be a finite number, not negative")
    return parsed


@api_view("POST")
def jobs_transition(request: APIRequest, client_id: str) -> HttpResponse:
    """POST /api/v1/jobs/<id>/transition {"status": ..., "at"?, "core_hours"?}."""
    body, problem = _json_body(request)
    if problem:
        return problem
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        return error(400, "invalid_transition", 'send {"status": "running"} (or another status)')
    org = request.api_key.organization
    try:
        job = job_transition(
            org=org,
            client_id=client_id,
            status=body["status"],
            at=_parse_time(body.get("at")),
            core_hours=_parse_core_hours(body.get("core_hours")),
        )
    except Job.DoesNotExist:
        return error(404, "not_found", f"no job {client_id!r}")
    except JobInvalid as exc:
        return error(400, "invalid_transition", f"{exc.field}: {exc.error}", field=exc.field)
    except JobTransitionIllegal as exc:
        return error(409, "illegal_transition", str(exc), job=job_json(exc.job))
    except InsufficientCredits as exc:
        return error(402, "insufficient_credits", str(exc), field="credits")
    return JsonResponse(job_json(job))


def _optional_count(body: dict, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number, not negative")
    return value


@csrf_exempt
def controller_heartbeat_view(request: HttpRequest) -> HttpResponse:
    """POST /api/v1/controllers/heartbeat, authenticated by the controller's own token."""
    if request.method != "POST":
        response = error(405, "method_not_allowed", "use POST")
        response["Allow"] = "POST"
        return response
    controller = controller_for_token(token=_bearer(request))
    if controller is None:
        response = error(401, "invalid_controller_token", "unknown controller token")
        response["WWW-Authenticate"] = 'Bearer realm="controllers"'
        return response
    body: Any = {}
    if request.content_type == "application/json":  # the capacity report is optional
        body, problem = _json_body(request)
        if problem:
            return problem
    body = body if isinstance(body, dict) else {}
    try:
        cores, memory = _optional_count(body, "cores"), _optional_count(body, "memory_gb")
    except ValueError as exc:
        return error(400, "invalid_heartbeat", str(exc))
    if cores == 0:
        return error(400, "invalid_heartbeat", "cores must be at least 1")
    controller = controller_heartbeat(controller=controller, cores=cores, memory_gb=memory)
    return JsonResponse(
        {
            "name": controller.name,
            "online": controller.online,
            "cores": controller.cores,
            "memory_gb": controller.memory_gb,
            "last_heartbeat_at": _iso(controller.last_heartbeat_at),
        }
    )
