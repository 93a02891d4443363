"""Accounts' API: account session tokens (issue, read, renew, revoke) and the audit log.

Session tokens are a person's access to one organization for 30 days; the audit log is
read by owners and admins through their own session token (an API key acts for no
person: 403).
"""

from datetime import datetime

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema
from ninja.responses import Status
from ninja.security import django_auth
from pydantic import field_validator

from accounts.api_core import API_KEY_OR_SESSION, SESSION_ONLY, Principal
from accounts.audit import audit_events
from accounts.models import AuditAction, Membership
from accounts.services import (
    SessionTokenUnusable,
    session_token_issue,
    session_token_renew,
    session_token_revoke,
)
from core.api import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    APIError,
    CredentialRejected,
    ErrorOut,
    PageMeta,
    not_found,
    paginate,
)

sessions = Router(tags=["Session tokens"])


class APIRequest(HttpRequest):
    auth: Principal


class SessionTokenIn(Schema):
    organization: str = Field(description="The organization's slug (you must be a member).")
    name: str = Field("", max_length=100, description="A label to recognise the token by.")

    @field_validator("organization", "name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class SessionTokenOut(Schema):
    id: int
    organization_id: int
    email: str
    name: str
    display: str = Field(description="The token's prefix and last four characters.")
    created_at: datetime
    expires_at: datetime
    renewed_at: datetime | None
    last_used_at: datetime | None


class IssuedSessionTokenOut(SessionTokenOut):
    token: str = Field(description="The secret: shown this once, store it safely.")


def _token_out(token) -> dict:
    return {
        "id": token.pk,
        "organization_id": token.organization_id,
        "email": token.user.email,
        "name": token.name,
        "display": token.display,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "renewed_at": token.renewed_at,
        "last_used_at": token.last_used_at,
    }


@sessions.post(
    "/session-tokens",
    auth=django_auth,
    response={201: IssuedSessionTokenOut, 403: ErrorOut, 404: ErrorOut},
    url_name="session_token_issue",
    summary="Issue an account session token (logged-in members, from the browser)",
)
def session_token_create(request: HttpRequest, payload: SessionTokenIn):
    """For a person logged in to the console (session cookie and CSRF token): a 30-day
    token for one of their organizations. The secret is in this answer only."""
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=request.user, organization__slug=payload.organization)
        .first()
    )
    if membership is None:
        raise not_found(f"no organization {payload.organization!r}")
    issued = session_token_issue(
        user=membership.user, org=membership.organization, name=payload.name
    )
    return Status(201, {**_token_out(issued.token), "token": issued.secret})


@sessions.get(
    "/session-token",
    auth=SESSION_ONLY,
    response=SessionTokenOut,
    url_name="session_token_detail",
    summary="The session token you are using: when it expires",
)
def session_token_detail(request: APIRequest):
    return _token_out(request.auth.session_token)


@sessions.post(
    "/session-token/renew",
    auth=SESSION_ONLY,
    response=SessionTokenOut,
    url_name="session_token_renew",
    summary="Renew the session token you are using for another 30 days",
)
def session_token_renew_view(request: APIRequest):
    """The same secret stays valid 30 days from now. An expired token cannot be renewed
    (its requests are 401 session_token_expired): issue a new one."""
    try:
        token = session_token_renew(token=request.auth.session_token)  # type: ignore[arg-type]
    except SessionTokenUnusable as exc:
        raise CredentialRejected("session_token_expired", str(exc)) from None
    token.user = request.auth.session_token.user  # type: ignore[union-attr]
    return _token_out(token)


@sessions.delete(
    "/session-token",
    auth=SESSION_ONLY,
    response={204: None},
    url_name="session_token_revoke",
    summary="Revoke the session token you are using",
)
def session_token_revoke_view(request: APIRequest) -> HttpResponse:
    session_token_revoke(token=request.auth.session_token)  # type: ignore[arg-type]
    return HttpResponse(status=204)


# --- Audit log -------------------------------------------------------------------------


audit = Router(tags=["Audit log"], auth=API_KEY_OR_SESSION)


class AuditEventOut(Schema):
    id: int
    created_at: datetime
    actor_email: str = Field(description="Who made the change; empty for the system.")
    by_operator: bool = Field(description="Made by the platform's operators in admin.")
    action: str = Field(description="What kind of change, e.g. member.role_changed.")
    summary: str
    target: str = Field(description='What it was done to, e.g. "api_key:12".')
    ip_address: str | None = Field(description="The client's address, when known.")
    data: dict


class AuditEventListOut(PageMeta):
    items: list[AuditEventOut]


@audit.get(
    "/audit-events",
    response={200: AuditEventListOut, 403: ErrorOut},
    url_name="audit_events",
    summary="The organization's audit log, newest first (owners and admins)",
)
def audit_events_list(
    request: APIRequest,
    actor: str = Query("", max_length=254, description="Only changes by this email."),
    action: AuditAction | None = Query(None, description="Only this kind of change."),
    page: int = Query(1, ge=1, description="Page number, from 1."),
    page_size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Per page."),
):
    """Append-only: the API reads events and has no way to change or delete one."""
    principal = request.auth
    if not principal.can_manage:
        raise APIError(
            403,
            "forbidden",
            "the audit log needs the session token of an owner or admin of the organization",
        )
    events = audit_events(
        org=principal.organization, actor_email=actor.strip(), action=action.value if action else ""
    )
    meta, rows = paginate(events, page=page, page_size=page_size)
    items = [
        {
            "id": e.pk,
            "created_at": e.created_at,
            "actor_email": e.actor_email,
            "by_operator": e.by_operator,
            "action": e.action,
            "summary": e.summary,
            "target": e.target,
            "ip_address": e.ip_address,
            "data": e.data,
        }
        for e in rows
    ]
    return {**meta, "items": items}
