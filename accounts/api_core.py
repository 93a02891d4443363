"""What every API endpoint shares: credentials, rate limits and their headers, errors.

Two credentials, both sent as `Authorization: Bearer <secret>`:
- an API key (`sk-av-…`, Settings → API keys): programs; the only credential that may
  send usage;
- an account session token (`st-av-…`, Settings → Session tokens): a person's access to
  one organization for 30 days, renewable, revocable.

Every answer to an authenticated request carries X-RateLimit-{Limit,Remaining,Reset}-
{RPM,TPM}; a request over the limit is a 429 with Retry-After. Errors are JSON:
{"error": code, "message": text, "field": the parameter or body field at fault}.
"""

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from accounts.credential_cache import credential_cached, instance_copy
from accounts.credentials import secret_hash
from accounts.models import APIKey, APIKeyKind, Membership, Organization, SessionToken
from accounts.request_context import organization_var
from accounts.selectors import apikey_for_secret, session_token_for_secret
from accounts.services import SESSION_TOKEN_PREFIX

logger = logging.getLogger(__name__)


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


# --- Who is asking --------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: an API key, or a person's session token."""

    organization: Organization
    api_key: APIKey | None = None
    session_token: SessionToken | None = None
    membership: Membership | None = None

    def __post_init__(self) -> None:
        # Log lines written while this caller is served name its organization.
        organization_var.set(self.organization.slug)

    @property
    def kind(self) -> str:
        return "api_key" if self.api_key is not None else "session_token"

    @property
    def can_manage(self) -> bool:
        """An owner or admin acting through their own session token."""
        return self.membership is not None and self.membership.can_manage

    @property
    def can_pay(self) -> bool:
        """An owner, admin or billing member acting through their own session token."""
        return self.membership is not None and self.membership.can_pay


class BearerScheme(HttpBearer):
    """HttpBearer without its DEBUG log line, which writes the whole Authorization header
    (the credential) when the scheme is not "Bearer": nothing here logs a credential."""

    def __call__(self, request: HttpRequest) -> Any:
        scheme, _, token = request.headers.get(self.header, "").partition(" ")
        if not scheme or scheme.lower() != self.openapi_scheme:
            return None
        return self.authenticate(request, token)


INVALID_API_KEY = "invalid API key"
INVALID_SESSION_TOKEN = "invalid session token"  # noqa: S105 - a message, not a secret


def _personal_key_usable(key: APIKey) -> bool:
    """A personal key works only while its person exists and is active (leaving revokes
    it too: accounts.receivers; this covers rows changed behind the services' back)."""
    if key.kind != APIKeyKind.PERSONAL:
        return True
    return key.user is not None and key.user.is_active


def _is_session_token(secret: str) -> bool:
    return secret.startswith(SESSION_TOKEN_PREFIX + "-")


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _organization_now(request: HttpRequest, kept: Organization) -> Organization | None:
    """The organization a request works with. A read request reads it afresh (by its key,
    where the database router sends this request's reads: the replica, or the primary for
    a client that just wrote), so the API answers with what the pages show, never with
    the cache's copy of a second ago; a write (usage sent, the hot path) keeps the cache's
    copy: what it changes, its services read from the primary. None: gone meanwhile."""
    if request.method not in READ_METHODS or "replica" not in settings.DATABASES:
        # Without a replica every read is the primary's, and the cache's copy is at most
        # API_CREDENTIAL_CACHE_SECONDS old: no query.
        return instance_copy(kept)
    return Organization.objects.filter(pk=kept.pk).first()


def _api_key(request: HttpRequest, secret: str) -> APIKey | None:
    """The key whose secret this is, as the database said at most a second or so ago
    (accounts.credential_cache), as this request's own copy."""
    if not secret or len(secret) > 200:
        return None
    key = credential_cached("key:" + secret_hash(secret), lambda: apikey_for_secret(secret=secret))
    if key is None:
        return None
    organization = _organization_now(request, key.organization)
    if organization is None:
        return None
    user = instance_copy(key.user) if key.user is not None else None
    mine = instance_copy(key, organization=organization, user=user)
    mine.kept_original = key  # type: ignore[attr-defined]  # accounts.services.apikey_mark_used
    return mine


def _session_token(
    request: HttpRequest, secret: str
) -> tuple[SessionToken | None, Membership | None]:
    """The session token whose secret this is and its person's membership of its
    organization, read as _api_key reads a key."""
    if not secret or len(secret) > 200:
        return None, None

    def load() -> tuple[SessionToken, Membership | None] | None:
        session = session_token_for_secret(secret=secret)
        if session is None:
            return None
        membership = (
            Membership.objects.filter(user=session.user, organization=session.organization)
            .select_related("organization", "user")
            .first()
        )
        return session, membership

    found = credential_cached("session:" + secret_hash(secret), load)
    if found is None:
        return None, None
    session, membership = found
    organization = _organization_now(request, session.organization)
    if organization is None:
        return None, None
    user = instance_copy(session.user)
    session = instance_copy(session, organization=organization, user=user)
    if membership is not None:
        membership = instance_copy(membership, organization=organization, user=user)
    return session, membership


class ApiKeyAuth(BearerScheme):
    """Authorization: Bearer <API key>."""

    openapi_description = (
        "An API key (sk-av-…) from Settings → API keys. Usage sent with it is attributed "
        "to the key."
    )

    def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        if _is_session_token(token):
            return None  # the next scheme's
        key = _api_key(request, token)
        # Unknown, revoked, or a personal key whose person left: one answer, so a leaked
        # secret is not confirmed to have been valid once.
        if key is None or key.is_revoked or not _personal_key_usable(key):
            raise CredentialRejected("invalid_api_key", INVALID_API_KEY)
        if key.project.is_archived:  # docs/projects.md: its keys stop working, history stays
            raise APIError(403, "project_archived", f"Project {key.project.name} is archived")
        return Principal(organization=key.organization, api_key=key)


class SessionTokenAuth(BearerScheme):
    """Authorization: Bearer <account session token>."""

    openapi_description = (
        "An account session token (st-av-…) issued to a logged-in member in Settings → "
        "Session tokens or by POST /api/v1/auth/session-tokens. Valid 30 days from issue "
        "or last renewal; renew it before it expires (POST /api/v1/auth/session-token/"
        "renew). An expired token is a 401 with error session_token_expired."
    )

    def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        if not _is_session_token(token):
            return None
        session, membership = _session_token(request, token)
        if session is None or session.is_revoked:
            raise CredentialRejected("invalid_session_token", INVALID_SESSION_TOKEN)
        if session.is_expired:
            raise CredentialRejected(
                "session_token_expired",
                f"this session token expired at {session.expires_at:%Y-%m-%dT%H:%M:%SZ}; "
                "issue a new one in Settings → Session tokens",
            )
        if membership is None or not session.user.is_active:
            raise CredentialRejected(
                "invalid_session_token",
                "this token's person is no longer a member of its organization",
            )
        return Principal(
            organization=session.organization, session_token=session, membership=membership
        )


class Refuse:
    """The last of an operation's schemes: nothing matched, so say what to send."""

    def __init__(self, code: str, message: str, *, realm: str = "api") -> None:
        self.code, self.message, self.realm = code, message, realm

    def __call__(self, request: HttpRequest) -> None:
        raise CredentialRejected(self.code, self.message, realm=self.realm)


API_KEY_ONLY = [
    ApiKeyAuth(),
    Refuse("invalid_api_key", "send your API key as 'Authorization: Bearer <key>'"),
]
API_KEY_OR_SESSION = [
    ApiKeyAuth(),
    SessionTokenAuth(),
    Refuse(
        "invalid_credentials",
        "send an API key or an account session token as 'Authorization: Bearer <secret>'",
    ),
]
SESSION_ONLY = [
    SessionTokenAuth(),
    Refuse("invalid_session_token", "send your session token as 'Authorization: Bearer <token>'"),
]


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
