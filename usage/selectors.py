"""Reads for usage ingestion: jobs by client id, controllers, calendar-month tokens.

The usage panel's reads live in usage/panel_selectors.py. Every selector that reads an
organization's data takes the organization and filters by it.
"""

import zoneinfo
from datetime import datetime

from django.db.models import QuerySet, Sum
from django.utils import timezone

from accounts.models import Organization
from usage.models import Controller, Job, Query


def next_month(month_start: datetime) -> datetime:
    """The first instant of the calendar month after the one starting at month_start."""
    if month_start.month == 12:
        return month_start.replace(year=month_start.year + 1, month=1)
    return month_start.replace(month=month_start.month + 1)


def month_start_of(*, org: Organization, at: datetime | None = None) -> datetime:
    """The start of the calendar month containing `at`, in the organization's time zone."""
    local = (at or timezone.now()).astimezone(zoneinfo.ZoneInfo(org.time_zone or "UTC"))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_to_date_tokens(*, org: Organization, at: datetime | None = None) -> int:
    """Tokens of the organization's queries in the current calendar month (its time zone)."""
    start = month_start_of(org=org, at=at)
    total = Query.objects.filter(
        organization=org, occurred_at__gte=start, occurred_at__lt=next_month(start)
    ).aggregate(tokens=Sum("total_tokens"))["tokens"]
    return total or 0


def job_get(*, org: Organization, client_id: str) -> Job | None:
    """The organization's job with this client id, if any."""
    return (
        Job.objects.select_related("controller", "api_key")
        .filter(organization=org, client_id=client_id)
        .first()
    )


def controllers_of(*, org: Organization) -> QuerySet[Controller]:
    """The organization's controllers by name."""
    return Controller.objects.filter(organization=org)


def controller_for_token(*, token: str) -> Controller | None:
    """The controller whose token this is, with its organization; else None."""
    from accounts.services import secret_hash

    if not token or len(token) > 200:
        return None
    return (
        Controller.objects.select_related("organization")
        .filter(token_hash=secret_hash(token))
        .first()
    )
