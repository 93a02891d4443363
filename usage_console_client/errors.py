"""Exceptions the client raises: one class per kind of answer, all UsageConsoleError."""

from typing import Any


class UsageConsoleError(Exception):
    """Anything the client could not do."""


class ConfigurationError(UsageConsoleError):
    """No credential (or base URL) set for the call."""


class APIConnectionError(UsageConsoleError):
    """The console could not be reached."""


class APIError(UsageConsoleError):
    """The console answered with an error (4xx or 5xx)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.body = body
        self.headers = headers or {}


class BadRequestError(APIError):
    """400: a bad parameter or body field; `field` names it."""


class AuthenticationError(APIError):
    """401: missing, unknown or revoked credentials."""


class SessionTokenExpiredError(AuthenticationError):
    """401: the session token expired (after 30 days): issue a new one in Settings."""


class PaymentDeclinedError(APIError):
    """402: the payment was declined or failed; `payment` holds its record."""

    payment: Any = None


class PermissionDeniedError(APIError):
    """403: the credential may not do this (e.g. adding credits with an API key)."""


class NotFoundError(APIError):
    """404: no such object in your organization (another organization's is a 404 too)."""


class ConflictError(APIError):
    """409: e.g. an illegal job transition."""


class UnprocessableError(APIError):
    """422: e.g. an Idempotency-Key reused with a different body."""


class RateLimitError(APIError):
    """429: over the rate limit (or the monthly token allocation); `retry_after` seconds."""

    @property
    def retry_after(self) -> int | None:
        value = self.headers.get("Retry-After")
        return int(value) if value and value.isdigit() else None


class ServerError(APIError):
    """5xx: the console failed; safe to retry later."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentDeclinedError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableError,
    429: RateLimitError,
}


def error_for(status: int, body: Any, headers: dict[str, str]) -> APIError:
    """The exception for an error answer."""
    data = body if isinstance(body, dict) else {}
    code = str(data.get("error") or ("server_error" if status >= 500 else "error"))
    message = str(data.get("message") or (body if isinstance(body, str) else "") or status)
    cls = ServerError if status >= 500 else _BY_STATUS.get(status, APIError)
    if status == 401 and code == "session_token_expired":
        cls = SessionTokenExpiredError
    return cls(status, code, message, field=data.get("field"), body=body, headers=headers)
