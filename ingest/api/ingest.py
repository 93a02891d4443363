"""The usage write API: batch ingestion, the jobs endpoints and controller heartbeats.

Authenticated by `Authorization: Bearer <API key>` (heartbeats: the controller's token).
The wire shapes are a contract (docs/api.md): these views parse their bodies themselves,
exactly as before the API had a schema, and the schema documents them.
"""

import json
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from ninja import Router

from accounts.api_core import API_KEY_ONLY, Principal
from billing.services import InsufficientCredits, LedgerError
from core.api import BearerScheme, CredentialRejected, ErrorOut, Refuse, error
from core.errors import FieldError
from ingest.api.schemas import (
    HEARTBEAT_BODY,
    JOB_BODY,
    RECORDS_BODY,
    TRANSITION_BODY,
    HeartbeatOut,
    IngestOut,
    IngestRefusedOut,
    JobConflictOut,
    JobOut,
)
from ingest.services.fields import max_future_skew, record_time
from ingest.services.ingest import MAX_BATCH_RECORDS, usage_records_ingest
from ingest.services.jobs import JobInvalid, JobTransitionIllegal, job_submit, job_transition
from spend.api.spend import IngestCeiling
from usage.limits import MAX_CORE_HOURS, MAX_CORES, MAX_MEMORY_GB
from usage.models import Job
from usage.selectors.records import controller_for_token, job_get
from usage.services.controllers import controller_heartbeat
from usage.signals import usage_recorded

router = Router(tags=["Ingestion and jobs"], auth=API_KEY_ONLY)


class APIRequest(HttpRequest):
    auth: Principal
    tokens_used: int


def _key(request: APIRequest):
    assert request.auth.api_key is not None
    return request.auth.api_key


class ControllerTokenAuth(BearerScheme):
    """Authorization: Bearer <controller token> (heartbeats only)."""

    openapi_description = "A controller's own token, shown when it is registered."

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        controller = controller_for_token(token=token)
        if controller is None:
            raise CredentialRejected(
                "invalid_controller_token", "unknown controller token", realm="controllers"
            )
        return controller


CONTROLLER_ONLY = [
    ControllerTokenAuth(),
    Refuse("invalid_controller_token", "unknown controller token", realm="controllers"),
]


# JSON nesting allowed in a request body: records are two levels deep; 32 leaves room.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")


def json_too_deep(body: bytes, *, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects deeper than limit, found without
    parsing it (the parser, and anything walking its result, recurse per level): strings
    are cut out, then the innermost bracket pairs peeled off one level a pass."""
    shape = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        peeled = _INNERMOST.sub(b"", shape)
        if peeled == shape:  # empty, or unbalanced (the parser will say so)
            return False
        shape = peeled
    return _INNERMOST.search(shape) is not None


def unsupported_media_type(request: HttpRequest) -> JsonResponse | None:
    """415 unless the body is declared JSON (a text/plain body is not parsed as JSON)."""
    if request.content_type == "application/json":
        return None
    return error(
        415,
        "unsupported_media_type",
        "send the body as JSON with Content-Type: application/json",
        field="Content-Type",
    )


def _json_body(request: HttpRequest) -> tuple[Any, JsonResponse | None]:
    try:
        body = request.body
    except RequestDataTooBig:
        return None, error(413, "too_large", "request body too large")
    if not body:
        return {}, None
    if json_too_deep(body):
        return None, error(
            400,
            "invalid_json",
            f"the body nests arrays or objects deeper than {MAX_JSON_DEPTH} levels",
            field="body",
        )
    try:
        parsed = _decode(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, error(400, "invalid_json", "the body is not valid JSON")
    # A NUL can only arrive escaped (json refuses raw control characters in strings), so
    # a body without that escape needs no walk through every value.
    where = _nul_at(parsed, "") if b"\\u0000" in body else None
    if where is not None:  # no database stores NUL in text; refuse it as bad input
        return None, error(
            400, "invalid_json", f"{where or 'body'}: text must not contain NUL", field=where
        )
    return parsed, None


_DECODER = msgspec.json.Decoder()


def _decode(body: bytes) -> Any:
    """The body parsed by msgspec's compiled decoder (a 1,000-record batch in a few
    milliseconds); what it refuses (NaN, numbers past a double, lone surrogates, other
    encodings than UTF-8) is parsed as before by the standard library, which accepts
    some of it and refuses the rest with the same answer as always."""
    try:
        return _DECODER.decode(body)
    except msgspec.DecodeError:
        return json.loads(body)


def _nul_at(value: Any, path: str) -> str | None:
    """Where the first string (or key) holding a NUL character is, else None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return here
            found = _nul_at(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


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


@router.post(
    "/usage/records",
    url_name="usage_records",
    summary="Send a batch of usage records",
    response={
        200: IngestOut,
        400: ErrorOut,
        409: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        # Only the rate limit answers 429 (ErrorOut). IngestRefusedOut stays because the
        # published schema names it; nothing sends it since a query past the free
        # allocation is charged in part, not refused (ingest/services/ingest.py).
        429: IngestRefusedOut | ErrorOut,
    },
    openapi_extra={"requestBody": RECORDS_BODY},
    throttle=[IngestCeiling()],  # spend controls: RPM and TPM moved to authorize
)
def usage_records(request: APIRequest) -> HttpResponse:
    """POST /api/v1/usage/records: a batch of up to 1,000 records (docs/api.md wire shape)."""
    if (refused := unsupported_media_type(request)) is not None:
        return refused
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
    key = _key(request)
    try:
        result = usage_records_ingest(org=key.organization, records=records, api_key=key)
    except LedgerError as exc:  # the balance moved under a concurrent adjustment: retry
        return error(409, "balance_changed", str(exc))
    if result.accepted:  # the alert rules are checked right after a batch (alerts app)
        usage_recorded.send(sender=usage_recorded, organization_id=key.organization_id)
    # Tokens no longer count against TPM here: authorize counts them (spend controls).
    return JsonResponse(result.as_dict())


@router.post(
    "/jobs",
    url_name="jobs_submit",
    summary="Submit a job",
    response={200: JobOut, 201: JobOut, 400: ErrorOut, 415: ErrorOut},
    openapi_extra={"requestBody": JOB_BODY},
)
def jobs_submit(request: APIRequest) -> HttpResponse:
    """POST /api/v1/jobs: submit a job (a job record; status defaults to submitted)."""
    if (refused := unsupported_media_type(request)) is not None:
        return refused
    body, problem = _json_body(request)
    if problem:
        return problem
    if not isinstance(body, dict):
        return error(400, "invalid_job", "send a JSON object")
    submitted = job_submit(org=_key(request).organization, api_key=_key(request), record=body)
    if submitted.rejection is not None:
        r = submitted.rejection
        return error(400, "invalid_job", f"{r.field}: {r.error}", field=r.field)
    assert submitted.job is not None
    return JsonResponse(job_json(submitted.job), status=201 if submitted.created else 200)


@router.get(
    "/jobs/{client_id}",
    url_name="jobs_detail",
    summary="A job's current state",
    response={200: JobOut, 404: ErrorOut},
)
def jobs_detail(request: APIRequest, client_id: str) -> HttpResponse:
    """GET /api/v1/jobs/<id>: the job's current state."""
    job = job_get(org=_key(request).organization, client_id=client_id)
    if job is None:
        return error(404, "not_found", f"no job {client_id!r}")
    return JsonResponse(job_json(job))


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    return record_time(value, field="at", latest=timezone.now() + max_future_skew())


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
    if parsed > MAX_CORE_HOURS:  # what the core_hours column (and its credits) can hold
        raise JobInvalid("core_hours", f"is too large (at most {MAX_CORE_HOURS:,})")
    return parsed


@router.post(
    "/jobs/{client_id}/transition",
    url_name="jobs_transition",
    summary="Move a job along its lifecycle",
    response={
        200: JobOut,
        400: ErrorOut,
        402: ErrorOut,
        404: ErrorOut,
        409: JobConflictOut,
        415: ErrorOut,
    },
    openapi_extra={"requestBody": TRANSITION_BODY},
)
def jobs_transition(request: APIRequest, client_id: str) -> HttpResponse:
    """POST /api/v1/jobs/<id>/transition {"status": ..., "at"?, "core_hours"?}."""
    if (refused := unsupported_media_type(request)) is not None:
        return refused
    body, problem = _json_body(request)
    if problem:
        return problem
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        return error(400, "invalid_transition", 'send {"status": "running"} (or another status)')
    org = _key(request).organization
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
    except FieldError as exc:  # JobInvalid, or the step's time
        return error(400, "invalid_transition", f"{exc.field}: {exc.error}", field=exc.field)
    except JobTransitionIllegal as exc:
        return error(409, "illegal_transition", str(exc), job=job_json(exc.job))
    except InsufficientCredits as exc:
        return error(402, "insufficient_credits", str(exc), field="credits")
    return JsonResponse(job_json(job))


def _optional_count(body: dict, name: str, *, maximum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number, not negative")
    if value > maximum:
        raise ValueError(f"{name} is too large (at most {maximum:,})")
    return value


@router.post(
    "/controllers/heartbeat",
    auth=CONTROLLER_ONLY,
    url_name="controller_heartbeat",
    summary="A controller reports that it is alive (and its capacity)",
    response={200: HeartbeatOut, 400: ErrorOut},
    openapi_extra={"requestBody": HEARTBEAT_BODY},
)
def controller_heartbeat_view(request: HttpRequest) -> HttpResponse:
    """POST /api/v1/controllers/heartbeat, authenticated by the controller's own token."""
    controller = request.auth  # type: ignore[attr-defined]
    body: Any = {}
    if request.content_type == "application/json":  # the capacity report is optional
        body, problem = _json_body(request)
        if problem:
            return problem
    body = body if isinstance(body, dict) else {}
    try:
        cores = _optional_count(body, "cores", maximum=MAX_CORES)
        memory = _optional_count(body, "memory_gb", maximum=MAX_MEMORY_GB)
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
