"""Requests and tokens per minute, on every API answer: the throttle that counts a
request and the decorator that counts its tokens and puts the X-RateLimit-* headers on
the answer (console/api.py installs both on the one API object)."""

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja.throttling import BaseThrottle

from accounts.api_core import Principal
from accounts.services import apikey_mark_used, session_token_mark_used
from spend.ratelimit import (
    RateState,
    ratelimit_record_refusal,
    ratelimit_request,
    ratelimit_request_session,
    ratelimit_tokens,
)

logger = logging.getLogger(__name__)


RATE_LIMIT_HEADERS = tuple(
    f"X-RateLimit-{what}-{unit}"
    for unit in ("RPM", "TPM")
    for what in ("Limit", "Remaining", "Reset")
)


class PrincipalRateLimit(BaseThrottle):
    """Requests and tokens per minute per API key (or per session token), as the
    ingestion endpoint has always counted them; refusals are recorded for the panel."""

    def allow_request(self, request: HttpRequest) -> bool:
        principal = getattr(request, "auth", None)
        if not isinstance(principal, Principal):
            return True  # controller heartbeats: not metered
        if principal.api_key is not None:
            state = ratelimit_request(key=principal.api_key)
        else:
            assert principal.session_token is not None
            state = ratelimit_request_session(token=principal.session_token)
        request.ratelimit_state = state  # type: ignore[attr-defined]
        if state.limited:
            if principal.api_key is not None:
                ratelimit_record_refusal(key=principal.api_key)
            else:
                logger.info(
                    "api.ratelimit.refused",
                    extra={"session_token": principal.session_token.pk},  # type: ignore[union-attr]
                )
            return False
        if principal.api_key is not None:
            apikey_mark_used(key=principal.api_key)
        else:
            session_token_mark_used(token=principal.session_token)  # type: ignore[arg-type]
        return True


def rate_limit_headers(run: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wraps every operation: after it answers (success, error or refusal), count the
    tokens it used and put the rate-limit headers (and Retry-After on a 429) on it."""

    @wraps(run)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        request.tokens_used = 0  # type: ignore[attr-defined]
        response = run(request, *args, **kwargs)
        state: RateState | None = getattr(request, "ratelimit_state", None)
        if state is None:
            return response
        principal: Principal = request.auth  # type: ignore[attr-defined]
        if state.limited:
            response["Retry-After"] = str(state.retry_after)
        elif request.tokens_used and principal.api_key is not None:  # type: ignore[attr-defined]
            state = ratelimit_tokens(
                key=principal.api_key,
                state=state,
                tokens=request.tokens_used,  # type: ignore[attr-defined]
            )
        for header, value in state.headers().items():
            response[header] = value
        return response

    return wrapper
