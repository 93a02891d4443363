"""What the spend API's two paths share (the django-ninja endpoints in spend/api/spend.py
and authorize's lean path in spend/api/authorize.py): the price list as they read it,
the messages' tokens, text the database can hold, and authorize's decision itself."""

import time
from typing import Any

from accounts.api_core import Principal
from accounts.services import apikey_mark_used
from billing.models import PriceModel
from core.api import APIError
from spend.estimate import InvalidMessages, TokenizeBudget, message_tokens, messages_validate
from spend.ratelimit import RateState
from spend.services.authorize import authorize_precheck, request_authorize
from usage.text import encodable


def storable(value: str | None) -> str | None:
    """Text the database can hold: no NUL, no lone surrogate (else a 400 naming it)."""
    if value is not None and ("\x00" in value or not encodable(value)):
        raise ValueError("must be text without NUL characters or lone surrogates")
    return value


# The price list as authorize and estimate read it, per process, for at most this long: a
# query saved on every call of the gateway's hot path; a price change reaches every
# process within it.
MODEL_CACHE_SECONDS = 2.0
models_kept: dict[str, tuple[float, PriceModel | None]] = {}


def _model_named(name: str) -> PriceModel | None:
    now = time.monotonic()
    cached = models_kept.get(name)
    if cached is not None and now - cached[0] < MODEL_CACHE_SECONDS:
        return cached[1]
    model = PriceModel.objects.filter(name=name).first()
    if len(models_kept) > 1000:  # names are whatever callers send: keep it bounded
        models_kept.clear()
    models_kept[name] = (now, model)
    return model


def price_model(name: str) -> PriceModel:
    """The active model of that name on the price list, else a 400 naming `model`."""
    # A name the database cannot even hold (NUL, a lone surrogate) is on no price list.
    storable_name = "\x00" not in name and encodable(name)
    model = _model_named(name) if storable_name else None
    if model is None:
        raise APIError(400, "invalid_body", f"model: unknown model {name!r}", field="model")
    if not model.is_active:
        raise APIError(400, "invalid_body", f"model: {name!r} is retired", field="model")
    return model


def messages_tokens(messages: list[dict]) -> int:
    """The messages' input tokens, within the tokenizing budget (400 or 413 naming the
    field at fault)."""
    try:
        checked = messages_validate(messages)
    except InvalidMessages as exc:
        raise APIError(400, "invalid_body", f"{exc.field}: {exc}", field=exc.field) from None
    try:
        return message_tokens(checked)
    except TokenizeBudget as exc:
        raise APIError(413, "too_large", f"{exc.field}: {exc}", field=exc.field) from None


def authorize_decide(
    principal: Principal,
    *,
    model: str,
    messages: list[dict] | None,
    input_tokens: int | None,
    max_output_tokens: int,
    member: str | None,
    endpoint: str | None,
) -> tuple[int, dict[str, Any], RateState | None]:
    """Authorize's answer to a parsed body: (status, body as the contract gives it, the
    rate-limit figures for the headers). Raises APIError for a bad body; either path
    renders both the same way."""
    key = principal.api_key
    assert key is not None
    if (messages is None) == (input_tokens is None):
        raise APIError(
            400, "invalid_body", "messages: send either messages or input_tokens", field="messages"
        )
    if input_tokens is not None:
        tokens = input_tokens
    else:
        # Tokenizing is this call's one expensive step: a key already over its rate is
        # refused before it.
        early = authorize_precheck(key=key)
        if early is not None:
            return early.status, early.as_dict(), early.rate
        tokens = messages_tokens(messages or [])
    verdict = request_authorize(
        key=key,
        model=price_model(model),
        input_tokens=tokens,
        max_output_tokens=max_output_tokens,
        member=member or "",
        endpoint=endpoint or "",
    )
    apikey_mark_used(key=key)
    return verdict.status, verdict.as_dict(), verdict.rate
