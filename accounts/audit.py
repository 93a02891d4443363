"""The audit log: one append-only event per change an organization's people (or the
platform's operators) make. Every app's services call audit_record in the same
transaction as the change, so an event exists exactly when the change committed."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import AuditAction, AuditEvent, Membership, Organization, User
from core.request_context import client_ip_var

# The time events are stamped with while past actions are replayed (the demo posts six
# months of payments in one run): each event then reads as of its action, not the replay.
_replayed_at: ContextVar[datetime | None] = ContextVar("audit_replayed_at", default=None)


@contextmanager
def audit_dated(at: datetime) -> Iterator[None]:
    """Within the block, events are stamped at `at`, the time of the action replayed."""
    token = _replayed_at.set(at)
    try:
        yield
    finally:
        _replayed_at.reset(token)


@transaction.atomic
def audit_record(
    *,
    org: Organization,
    action: str,
    summary: str,
    actor: User | None = None,
    target: str = "",
    data: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    """Append one event; the address defaults to the current request's client."""
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}")
    is_member = (
        actor is not None and Membership.objects.filter(organization=org, user_id=actor.pk).exists()
    )
    return AuditEvent.objects.create(
        organization=org,
        actor=actor,
        actor_email=actor.email if actor is not None else "",
        by_operator=actor is not None and actor.is_staff and not is_member,
        action=action,
        summary=summary[:300],
        target=target[:100],
        data=data or {},
        ip_address=ip_address if ip_address is not None else client_ip_var.get(),
        created_at=_replayed_at.get() or timezone.now(),
    )


# Reads -------------------------------------------------------------------------------------


def audit_events(
    *, org: Organization, actor_email: str = "", action: str = ""
) -> QuerySet[AuditEvent]:
    """The organization's events, newest first, filtered by person and kind when given."""
    events = AuditEvent.objects.filter(organization=org)
    if actor_email:
        events = events.filter(actor_email__iexact=actor_email)
    if action:
        events = events.filter(action=action)
    return events


def audit_people(*, org: Organization) -> list[str]:
    """Every email that appears as an actor in the organization's log, sorted."""
    return list(
        AuditEvent.objects.filter(organization=org)
        .exclude(actor_email="")
        .order_by("actor_email")
        .values_list("actor_email", flat=True)
        .distinct()
    )


AUDIT_EXPORT_FIELDS = (
    "created_at",
    "actor_email",
    "by_operator",
    "action",
    "summary",
    "target",
    "ip_address",
)


def audit_export_rows(
    *, org: Organization, actor_email: str = "", action: str = ""
) -> Iterator[tuple]:
    """The filtered events as tuples of AUDIT_EXPORT_FIELDS, oldest first, streamed."""
    return (
        audit_events(org=org, actor_email=actor_email, action=action)
        .order_by("created_at", "id")
        .values_list(*AUDIT_EXPORT_FIELDS)
        .iterator(chunk_size=2000)
    )
