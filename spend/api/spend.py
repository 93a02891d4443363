"""Spend controls' API: the gateway's pre-request `authorize`, the cost `estimate`,
budgets (`/budgets`) and pausing a key (`/keys/{id}/pause`, `/resume`).

`authorize` meters itself: it counts the request and its worst-case tokens against the
key's RPM and TPM and answers a refusal in its own shape ({"allowed": false, ...}), so the
API's shared throttle is off for it. Ingestion's throttle is `IngestCeiling`: a per-key
request ceiling protecting the console, never the customer's RPM or TPM.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.throttling import BaseThrottle
from pydantic import field_validator

from accounts.api_core import API_KEY_ONLY, API_KEY_OR_SESSION, Principal
from accounts.models import APIKey, User
from accounts.projects import project_ids_visible
from accounts.services import apikey_mark_used
from billing.money import DECIMAL, DecimalStr, decimal_str
from core.api import APIError, ErrorOut, not_found
from spend.api.common import authorize_decide, messages_tokens, price_model, storable
from spend.estimate import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    MAX_MESSAGE_CHARS,
    MAX_MESSAGES,
    MAX_OUTPUT_TOKENS,
    request_cost_estimate,
)
from spend.ratelimit import ratelimit_ingest, ratelimit_record_refusal
from spend.selectors.budgets import BudgetFigures, budget_figures, budget_get, budgets_visible
from spend.services.budgets import (
    BudgetInvalid,
    apikey_pause,
    apikey_resume,
    budget_create,
    budget_delete,
    budget_update,
)
from usage.limits import MAX_TOKENS

router = Router(tags=["Spend controls"])


class IngestCeiling(BaseThrottle):
    """Ingestion's only throttle: requests per key and minute past a ceiling well above
    customer limits (console protection); RPM and TPM are authorize's business."""

    def allow_request(self, request: HttpRequest) -> bool:
        principal = getattr(request, "auth", None)
        if not isinstance(principal, Principal) or principal.api_key is None:
            return True
        state = ratelimit_ingest(key=principal.api_key)
        request.ratelimit_state = state  # type: ignore[attr-defined]
        if state.limited:
            ratelimit_record_refusal(key=principal.api_key)
            return False
        apikey_mark_used(key=principal.api_key)
        return True


# --- Shapes ----------------------------------------------------------------------------


class MessageIn(Schema):
    role: str = Field(min_length=1, max_length=50, examples=["user"])
    content: str = Field(max_length=MAX_MESSAGE_CHARS, examples=["Explain quantum computing."])


class EstimateIn(Schema):
    model: str = Field(min_length=1, max_length=100, examples=["llama-3.1-8b"])
    messages: list[MessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_output_tokens: int = Field(
        DEFAULT_MAX_OUTPUT_TOKENS, ge=0, le=MAX_OUTPUT_TOKENS, strict=True
    )


class EstimateOut(Schema):
    estimated_input_tokens: int = Field(description="cl100k_base tokens + 4 per message.")
    max_output_tokens: int
    estimated_cost: DecimalStr = Field(
        description="Credits for the input and the whole maximum output at the model's prices.",
        json_schema_extra=DECIMAL,
    )


class AuthorizeIn(Schema):
    model: str = Field(min_length=1, max_length=100, examples=["llama-3.1-8b"])
    messages: list[MessageIn] | None = Field(
        None, max_length=MAX_MESSAGES, description="Either messages or input_tokens."
    )
    # Strict: a JSON integer, never "10", true or 1.0 (a gateway sending those has a bug).
    input_tokens: int | None = Field(None, ge=0, le=MAX_TOKENS, strict=True)
    max_output_tokens: int = Field(
        DEFAULT_MAX_OUTPUT_TOKENS, ge=0, le=MAX_OUTPUT_TOKENS, strict=True
    )
    member: str | None = Field(None, max_length=254, description="The end user's email.")
    endpoint: str | None = Field(None, max_length=200)

    @field_validator("member", "endpoint")
    @classmethod
    def _text_storable(cls, value: str | None) -> str | None:
        return storable(value)


class AuthorizeOut(Schema):
    allowed: Literal[True]
    reservation: str | None = Field(
        description='Send it on the usage record: "reservation": "…". null when the '
        "worst case costs nothing (nothing is held, so nothing is stored)."
    )
    estimated_cost: DecimalStr = Field(json_schema_extra=DECIMAL)
    expires_at: int | None = Field(
        description="Unix time the reservation lapses unless settled (null: no reservation)."
    )


class RefusedOut(Schema):
    allowed: Literal[False]
    reason: str = Field(
        description=(
            "402: key_paused, budget_exceeded, insufficient_balance, allocation_exhausted; "
            "429: rate_limit_requests, rate_limit_tokens."
        )
    )
    limit: Any = Field(description="The level refused against (credits, tokens or requests).")
    retry_after: int | None = Field(description="Seconds until it may succeed, if known.")
    budget: int | None = Field(None, description="budget_exceeded: the budget's id.")
    scope: str | None = Field(None, description="budget_exceeded: its scope.")
    period: str | None = Field(None, description="budget_exceeded: its period.")


class BudgetIn(Schema):
    scope: Literal["organization", "api_key", "member", "project"]
    period: Literal["day", "week", "month"]
    soft_limit: Decimal = Field(description="Credits: alerts only.")
    hard_limit: Decimal | None = Field(None, description="Credits: authorize refuses past it.")
    api_key: int | None = Field(None, description="The key's id (scope api_key).")
    member: str | None = Field(None, max_length=254, description="Email (scope member).")
    project: int | None = Field(None, description="The project's id (scope project).")
    thresholds: list[int] | None = Field(None, description="Alert at these % of the soft level.")

    @field_validator("member")
    @classmethod
    def _member_storable(cls, value: str | None) -> str | None:
        return storable(value)


class BudgetPatch(Schema):
    period: Literal["day", "week", "month"] | None = None
    soft_limit: Decimal | None = None
    hard_limit: Decimal | None = None
    thresholds: list[int] | None = None


class BudgetOut(Schema):
    id: int
    scope: str
    api_key: int | None
    member: str
    project: int | None
    period: str
    soft_limit: DecimalStr = Field(json_schema_extra=DECIMAL)
    hard_limit: DecimalStr | None = Field(json_schema_extra=DECIMAL)
    thresholds: list[int]
    spent: DecimalStr = Field(json_schema_extra=DECIMAL)
    reserved: DecimalStr = Field(json_schema_extra=DECIMAL)
    left: DecimalStr = Field(json_schema_extra=DECIMAL)
    resets_at: datetime
    projected: DecimalStr = Field(
        description="End-of-period spend at the current pace.", json_schema_extra=DECIMAL
    )
    over_cap: int = Field(description="Over-cap flags this period.")


class BudgetListOut(Schema):
    budgets: list[BudgetOut]


class PauseOut(Schema):
    api_key: int
    paused: bool


# --- Helpers ---------------------------------------------------------------------------


def _manager(request: HttpRequest) -> Principal:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    if not principal.can_manage:
        raise APIError(403, "forbidden", "only an owner or admin may change spend controls")
    return principal


def _actor(principal: Principal) -> User | None:
    """Who the audit log names: the person behind the session token."""
    return principal.membership.user if principal.membership else None


def _budget_json(f: BudgetFigures) -> dict:
    b = f.budget
    return {
        "id": b.pk,
        "scope": b.scope,
        "api_key": b.api_key_id,
        "member": b.member,
        "project": b.project_id,
        "period": b.period,
        "soft_limit": decimal_str(b.soft_limit),
        "hard_limit": decimal_str(b.hard_limit) if b.hard_limit is not None else None,
        "thresholds": b.thresholds,
        "spent": decimal_str(f.spent),
        "reserved": decimal_str(f.reserved),
        "left": decimal_str(f.left) if f.left is not None else None,
        "resets_at": f.resets_at.astimezone(UTC),
        "projected": decimal_str(f.projected),
        "over_cap": f.over_cap,
    }


def _project_ids(request: HttpRequest) -> frozenset[int] | None:
    """The projects the caller sees (None: all): a key its own, a person theirs."""
    principal = request.auth  # type: ignore[attr-defined]
    if principal.membership is not None:
        return project_ids_visible(membership=principal.membership)
    return frozenset({principal.api_key.project_id})


def _invalid(exc: BudgetInvalid) -> APIError:
    return APIError(400, "invalid_body", str(exc), field=exc.field)


# --- Endpoints -------------------------------------------------------------------------


@router.post(
    "/usage/estimate",
    auth=API_KEY_OR_SESSION,
    url_name="usage_estimate",
    summary="Estimate a request's tokens and worst-case cost",
    response={200: EstimateOut, 400: ErrorOut, 413: ErrorOut},
)
def usage_estimate(request: HttpRequest, body: EstimateIn) -> dict:
    """As the reference's estimate_request_cost: cl100k_base tokens of every message's
    content plus 4 per message; the cost of those and of max_output_tokens at the model's
    input and output prices (from the price list)."""
    model = price_model(body.model)
    tokens = messages_tokens([m.dict() for m in body.messages])
    estimate = request_cost_estimate(
        model=model, input_tokens=tokens, max_output_tokens=body.max_output_tokens
    )
    return estimate.as_dict()


@router.post(
    "/usage/authorize",
    auth=API_KEY_ONLY,
    throttle=[],
    url_name="usage_authorize",
    summary="Ask before serving a request: hold its worst-case cost, or be told why not",
    response={200: AuthorizeOut, 400: ErrorOut, 402: RefusedOut, 413: ErrorOut, 429: RefusedOut},
)
def usage_authorize(request: HttpRequest, body: AuthorizeIn) -> Any:
    """Checks, atomically, the key's pause, every hard budget that applies (organization,
    key, member), the balance (organizations that may not overdraw) and the free tier's
    monthly allocation, and counts the request and its worst-case tokens against the
    key's RPM and TPM. Allowed: the worst-case cost is held until a usage record carrying
    `"reservation"` settles it at its real cost, or it expires (10 minutes)."""
    status, answer, rate = authorize_decide(
        request.auth,  # type: ignore[attr-defined]
        model=body.model,
        messages=None if body.messages is None else [m.dict() for m in body.messages],
        input_tokens=body.input_tokens,
        max_output_tokens=body.max_output_tokens,
        member=body.member,
        endpoint=body.endpoint,
    )
    if rate is not None:
        request.ratelimit_state = rate  # type: ignore[attr-defined]
    return Status(status, answer)


@router.get(
    "/budgets",
    auth=API_KEY_OR_SESSION,
    url_name="budgets",
    summary="Budgets with spent, reserved, left, reset time and projection",
    response={200: BudgetListOut},
)
def budgets_list(request: HttpRequest) -> dict:
    org = request.auth.organization  # type: ignore[attr-defined]
    seen = budgets_visible(org=org, project_ids=_project_ids(request))
    figures = budget_figures(org=org, budgets=list(seen))
    return {"budgets": [_budget_json(f) for f in figures]}


@router.post(
    "/budgets",
    auth=API_KEY_OR_SESSION,
    url_name="budget_create",
    summary="Set a budget (owner or admin session token)",
    response={201: BudgetOut, 400: ErrorOut, 403: ErrorOut, 413: ErrorOut},
)
def budgets_create(request: HttpRequest, body: BudgetIn) -> Any:
    principal = _manager(request)
    org = principal.organization
    try:
        budget = budget_create(
            org=org,
            scope=body.scope,
            period=body.period,
            soft_limit=body.soft_limit,
            hard_limit=body.hard_limit,
            api_key_id=body.api_key,
            member=body.member or "",
            project_id=body.project,
            thresholds=body.thresholds,
            actor=_actor(principal),
        )
    except BudgetInvalid as exc:
        raise _invalid(exc) from None
    return Status(201, _budget_json(budget_figures(org=org, budgets=[budget])[0]))


@router.get(
    "/budgets/{budget_id}",
    auth=API_KEY_OR_SESSION,
    url_name="budget",
    summary="One budget",
    response={200: BudgetOut, 404: ErrorOut},
)
def budgets_detail(request: HttpRequest, budget_id: int) -> dict:
    org = request.auth.organization  # type: ignore[attr-defined]
    budget = budget_get(org=org, budget_id=budget_id, project_ids=_project_ids(request))
    if budget is None:
        raise not_found("no such budget")
    return _budget_json(budget_figures(org=org, budgets=[budget])[0])


@router.patch(
    "/budgets/{budget_id}",
    auth=API_KEY_OR_SESSION,
    url_name="budget_update",
    summary="Change a budget's levels, thresholds or period",
    response={200: BudgetOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 413: ErrorOut},
)
def budgets_update(request: HttpRequest, budget_id: int, body: BudgetPatch) -> dict:
    org = request.auth.organization  # type: ignore[attr-defined]
    budget = budget_get(org=org, budget_id=budget_id)
    if budget is None:
        raise not_found("no such budget")
    principal = _manager(request)
    try:
        budget_update(budget=budget, changes=body.dict(exclude_unset=True), actor=_actor(principal))
    except BudgetInvalid as exc:
        raise _invalid(exc) from None
    return _budget_json(budget_figures(org=org, budgets=[budget])[0])


@router.delete(
    "/budgets/{budget_id}",
    auth=API_KEY_OR_SESSION,
    url_name="budget_delete",
    summary="Remove a budget",
    response={204: None, 403: ErrorOut, 404: ErrorOut},
)
def budgets_delete(request: HttpRequest, budget_id: int) -> Any:
    org = request.auth.organization  # type: ignore[attr-defined]
    budget = budget_get(org=org, budget_id=budget_id)
    if budget is None:
        raise not_found("no such budget")
    budget_delete(budget=budget, actor=_actor(_manager(request)))
    return Status(204, None)


def _key_of(request: HttpRequest, key_id: int) -> APIKey:
    org = request.auth.organization  # type: ignore[attr-defined]
    key = APIKey.objects.filter(organization=org, pk=key_id).first()
    if key is None:
        raise not_found("no such API key")
    return key


@router.post(
    "/keys/{key_id}/pause",
    auth=API_KEY_OR_SESSION,
    url_name="key_pause",
    summary="Pause an API key: authorize answers 402 key_paused",
    response={200: PauseOut, 403: ErrorOut, 404: ErrorOut},
)
def keys_pause(request: HttpRequest, key_id: int) -> dict:
    key = _key_of(request, key_id)
    apikey_pause(key=key, by=_actor(_manager(request)))
    return {"api_key": key.pk, "paused": True}


@router.post(
    "/keys/{key_id}/resume",
    auth=API_KEY_OR_SESSION,
    url_name="key_resume",
    summary="Resume a paused API key",
    response={200: PauseOut, 403: ErrorOut, 404: ErrorOut},
)
def keys_resume(request: HttpRequest, key_id: int) -> dict:
    key = _key_of(request, key_id)
    apikey_resume(key=key, actor=_actor(_manager(request)))
    return {"api_key": key.pk, "paused": False}
