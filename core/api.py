"""What every app's API shares: errors as JSON naming the field at fault, the 401 of a
refused credential, the Bearer scheme, exception handlers, and page-number pagination.

Errors are JSON: {"error": code, "message": text, "field": the parameter or body field at
fault}. Which credentials exist and what they may do is accounts' (accounts/api_core.py).
"""

import math
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

# --- Errors ---------------------------------------------------------------------------


class APIError(Exception):
    """An answer other than success, as JSON naming the field at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}
        self.extra = extra


def bad_parameter(field: str, message: str) -> APIError:
    return APIError(400, "invalid_parameter", f"{field}: {message}", field=field)


def not_found(message: str) -> APIError:
    return APIError(404, "not_found", message)


def error(status: int, code: str, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": code, "message": message, **extra}, status=status)


class CredentialRejected(Exception):
    """401: missing, unknown, revoked or expired credentials."""

    def __init__(self, code: str, message: str, *, realm: str = "api") -> None:
        super().__init__(message)
        self.code, self.message, self.realm = code, message, realm


class BearerScheme(HttpBearer):
    """HttpBearer without its DEBUG log line, which writes the whole Authorization header
    (the credential) when the scheme is not "Bearer": nothing here logs a credential."""

    def __call__(self, request: HttpRequest) -> Any:
        scheme, _, token = request.headers.get(self.header, "").partition(" ")
        if not scheme or scheme.lower() != self.openapi_scheme:
            return None
        return self.authenticate(request, token)


class Refuse:
    """The last of an operation's schemes: nothing matched, so say what to send."""

    def __init__(self, code: str, message: str, *, realm: str = "api") -> None:
        self.code, self.message, self.realm = code, message, realm

    def __call__(self, request: HttpRequest) -> None:
        raise CredentialRejected(self.code, self.message, realm=self.realm)


# --- Exception handlers ----------------------------------------------------------------


def _field_of(entry: dict) -> str:
    loc = [str(part) for part in entry.get("loc", ())]
    if not loc:
        return ""
    source, rest = loc[0], loc[1:]
    if source == "body" and len(rest) > 1:
        rest = rest[1:]  # drop the body parameter's own name
    if source == "query":
        rest = rest[:1]  # a repeated parameter's position is not part of its name
    return ".".join(rest) or source


def install_exception_handlers(api: NinjaAPI) -> None:
    """Errors as {"error", "message", "field"}: 400 for bad parameters and bodies."""

    @api.exception_handler(APIError)
    def _api_error(request: HttpRequest, exc: APIError) -> HttpResponse:
        body: dict[str, Any] = {"error": exc.code, "message": exc.message}
        if exc.field is not None:
            body["field"] = exc.field
        response = JsonResponse({**body, **exc.extra}, status=exc.status)
        for header, value in exc.headers.items():
            response[header] = value
        return response

    @api.exception_handler(CredentialRejected)
    def _rejected(request: HttpRequest, exc: CredentialRejected) -> HttpResponse:
        response = error(401, exc.code, exc.message)
        response["WWW-Authenticate"] = f'Bearer realm="{exc.realm}"'
        return response

    @api.exception_handler(AuthenticationError)
    def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = error(401, "invalid_credentials", "authentication required")
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response

    @api.exception_handler(ValidationError)
    def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = [
            {
                "field": _field_of(entry),
                "in": str(entry.get("loc", ("",))[0]),
                "message": str(entry.get("msg", "is invalid")),
            }
            for entry in exc.errors
        ]
        first = errors[0] if errors else {"field": "", "in": "query", "message": "is invalid"}
        code = "invalid_body" if first["in"] == "body" else "invalid_parameter"
        return error(
            400,
            code,
            f"{first['field']}: {first['message']}",
            field=first["field"],
            errors=errors,
        )

    @api.exception_handler(RequestDataTooBig)
    def _too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        # A body over DATA_UPLOAD_MAX_MEMORY_SIZE, met while the API parses it: the same
        # answer the ingestion endpoint gives (Django alone would say 400, in HTML).
        return error(413, "too_large", "request body too large")

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return error(404, "not_found", str(exc) or "not found")

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 429:
            return error(
                429,
                "rate_limited",
                "rate limit reached for this credential; retry after the window resets",
            )
        if exc.status_code == 400:  # django-ninja could not parse the body (not UTF-8 JSON)
            return error(400, "invalid_json", f"the body is not valid JSON: {exc}", field="body")
        return error(exc.status_code, "error", str(exc))


# --- Shapes and pages every app's API shares -------------------------------------------


class ErrorOut(Schema):
    error: str = Field(description="A stable code, e.g. invalid_parameter, not_found.")
    message: str = Field(description="What went wrong, for a person.")
    field: str | None = Field(None, description="The parameter or body field at fault.")


class PageMeta(Schema):
    """Page-number pagination: ask for `page` (from 1) with `page_size` items."""

    count: int = Field(description="Items in the whole result.")
    page: int
    page_size: int
    pages: int = Field(description="Pages in the whole result (0 when it is empty).")
    next_page: int | None = Field(description="The next page's number, or null on the last.")
    previous_page: int | None


DEFAULT_PAGE_SIZE = 100


MAX_PAGE_SIZE = 500


def paginate(
    rows: QuerySet | Sequence, *, page: int, page_size: int
) -> tuple[dict[str, Any], list]:
    """The page's metadata and its rows; a page past the last is a 400 naming page."""
    count = rows.count() if isinstance(rows, QuerySet) else len(rows)
    pages = math.ceil(count / page_size)
    if page > max(pages, 1):
        raise bad_parameter("page", f"is out of range: there are {pages} pages of {page_size}")
    offset = (page - 1) * page_size
    items = list(rows[offset : offset + page_size])
    meta = {
        "count": count,
        "page": page,
        "page_size": page_size,
        "pages": pages,
        "next_page": page + 1 if page < pages else None,
        "previous_page": page - 1 if page > 1 else None,
    }
    return meta, items
