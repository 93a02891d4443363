"""`POST /api/v1/usage/authorize` on the lean path: answered before the web framework's
middleware chain and django-ninja (console/api_path.py), since the gateway asks it before
every request it serves and the framework's own path was half of its CPU.

The body is decoded by a compiled msgspec decoder whose types are at least as strict as
the documented schema (`AuthorizeIn` in spend/api/spend.py: strict integers, the same
bounds); the decision is the ninja endpoint's own (`authorize_decide`). A body the
decoder refuses, or text the database cannot hold, is left to the ninja endpoint
(`None`), which answers its exact 400: nothing has been counted or held by then, so the
second look changes nothing. The answers carry the endpoint's shapes and headers
(tests/spend/test_authorize_lean.py compares the two paths).
"""

from typing import Annotated, Any

import msgspec
from django.http import HttpRequest, HttpResponse

from accounts.api_core import API_KEY_ONLY, Principal
from core.api import BearerScheme
from spend.api.common import authorize_decide, storable
from spend.estimate import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    MAX_MESSAGE_CHARS,
    MAX_MESSAGES,
    MAX_OUTPUT_TOKENS,
)
from usage.limits import MAX_TOKENS


class _Message(msgspec.Struct):
    role: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    content: Annotated[str, msgspec.Meta(max_length=MAX_MESSAGE_CHARS)]


class _AuthorizeBody(msgspec.Struct):
    """AuthorizeIn's fields and bounds; unknown fields are ignored as there."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    messages: Annotated[list[_Message], msgspec.Meta(max_length=MAX_MESSAGES)] | None = None
    input_tokens: Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)] | None = None
    max_output_tokens: Annotated[int, msgspec.Meta(ge=0, le=MAX_OUTPUT_TOKENS)] = (
        DEFAULT_MAX_OUTPUT_TOKENS
    )
    member: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    endpoint: Annotated[str, msgspec.Meta(max_length=200)] | None = None


_decoder = msgspec.json.Decoder(_AuthorizeBody)
_encoder = msgspec.json.Encoder()

# RefusedOut's optional fields, which the documented answer always carries (null when
# they do not apply), in the schema's order.
_REFUSAL_EXTRA = ("budget", "scope", "period")


def _principal(request: HttpRequest) -> Principal:
    """The endpoint's schemes in their order, as django-ninja runs them: the first that
    answers wins; the last refuses (CredentialRejected). The caller has checked that the
    header is `Bearer <secret>` (console/api_path.py)."""
    secret = request.META["HTTP_AUTHORIZATION"][7:]
    for scheme in API_KEY_ONLY:
        principal = (
            scheme.authenticate(request, secret)
            if isinstance(scheme, BearerScheme)
            else scheme(request)
        )
        if principal:
            return principal
    raise AssertionError("API_KEY_ONLY ends with a scheme that refuses")  # pragma: no cover


def _parsed(request: HttpRequest) -> _AuthorizeBody | None:
    content_type = request.META.get("CONTENT_TYPE", "")
    if not content_type.startswith("application/json"):
        return None
    try:
        body = _decoder.decode(request.body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    try:
        storable(body.member)
        storable(body.endpoint)
    except ValueError:
        return None
    return body


def _answer(status: int, answer: dict[str, Any]) -> bytes:
    if not answer["allowed"]:
        answer = {**answer, **{name: answer.get(name) for name in _REFUSAL_EXTRA}}
    return _encoder.encode(answer)


def authorize_lean(request: HttpRequest) -> HttpResponse | None:
    """The endpoint's answer, or None to leave the request to django-ninja. Raises what
    the endpoint would raise (CredentialRejected, APIError, RequestDataTooBig) for the
    API's exception handlers to render."""
    principal = _principal(request)
    request.auth = principal  # type: ignore[attr-defined]
    body = _parsed(request)
    if body is None:
        return None
    messages = (
        None
        if body.messages is None
        else [{"role": m.role, "content": m.content} for m in body.messages]
    )
    status, answer, rate = authorize_decide(
        principal,
        model=body.model,
        messages=messages,
        input_tokens=body.input_tokens,
        max_output_tokens=body.max_output_tokens,
        member=body.member,
        endpoint=body.endpoint,
    )
    response = HttpResponse(
        _answer(status, answer), status=status, content_type="application/json; charset=utf-8"
    )
    if rate is not None:
        if rate.limited:
            response["Retry-After"] = str(rate.retry_after)
        for header, value in rate.headers().items():
            response[header] = value
    return response
