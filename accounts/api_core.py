"""The API's credentials: who is asking, and the schemes each endpoint accepts.

Two credentials, both sent as `Authorization: Bearer <secret>`:
- an API key (`sk-av-…`, Settings → API keys): programs; the only credential that may
  send usage;
- an account session token (`st-av-…`, Settings → Session tokens): a person's access to
  one organization for 30 days, renewable, revocable.

Every answer to an authenticated request carries X-RateLimit-{Limit,Remaining,Reset}-
{RPM,TPM}; a request over the limit is a 429 with Retry-After. Errors, the Bearer scheme
and pagination are every app's (core/api.py).
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest

from accounts.credential_cache import credential_cached, instance_copy
from accounts.credentials import secret_hash
from accounts.models import APIKey, APIKeyKind, Membership, Organization, SessionToken
from accounts.selectors import apikey_for_secret, session_token_for_secret
from accounts.services import SESSION_TOKEN_PREFIX
from core.api import APIError, BearerScheme, CredentialRejected, Refuse
from core.request_context import organization_var

logger = logging.getLogger(__name__)


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
