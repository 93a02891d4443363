"""GET /api/v1/audit-events: the organization's audit log for its owners and admins,
through their own session token (an API key acts for no person: 403)."""

from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from accounts.audit import audit_events
from accounts.models import AuditAction
from usage.api_core import API_KEY_OR_SESSION, APIError, Principal
from usage.api_params import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, paginate
from usage.api_schemas import ErrorOut, PageMeta

router = Router(tags=["Audit log"], auth=API_KEY_OR_SESSION)


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


class APIRequest(HttpRequest):
    auth: Principal


@router.get(
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
