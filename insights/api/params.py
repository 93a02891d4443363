"""Query parameters: time ranges (Unix milliseconds or dates); pages are core.api's.

Every bad parameter is a 400 naming it (core.bad_parameter).
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from accounts.api_core import Principal
from accounts.models import Organization, Project
from accounts.projects import project_ids_visible
from core.api import bad_parameter, not_found
from core.calendar import local_month_start, org_zone

# Unix milliseconds the API accepts: 1970 to the end of 9999.
MAX_MILLIS = 253_402_300_799_999


def from_millis(value: int, *, field: str) -> datetime:
    if not 0 <= value <= MAX_MILLIS:
        raise bad_parameter(field, f"must be Unix milliseconds from 0 to {MAX_MILLIS}")
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def to_millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def millis_range(start_date: int, end_date: int) -> tuple[datetime, datetime]:
    """[start, end) from Unix milliseconds; start after end is a 400 naming start_date."""
    start = from_millis(start_date, field="start_date")
    end = from_millis(end_date, field="end_date")
    if start > end:
        raise bad_parameter("start_date", "must not be after end_date")
    return start, end


def parse_moment(value: str, *, field: str, zone: ZoneInfo, end: bool) -> datetime:
    """A date (YYYY-MM-DD: the whole day in the organization's zone) or an ISO 8601 time
    (without an offset: in the organization's zone). An end date includes its day."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.min, tzinfo=zone)
            if end:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text.replace(" ", "+") if "T" in text else text)
    except (ValueError, OverflowError):
        raise bad_parameter(
            field, "must be a date (YYYY-MM-DD) or an ISO 8601 time (2026-11-20T10:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    if not 1970 <= moment.year <= 9998:
        raise bad_parameter(field, "must be between 1970 and 9998")
    return moment


def date_range(
    *,
    org: Organization,
    start_date: str | None,
    end_date: str | None,
    now: datetime,
    default_month: bool,
) -> tuple[datetime | None, datetime | None]:
    """The [start, end) a start_date/end_date pair names.

    With default_month (the LLM endpoints, as the reference says): when neither is given,
    the start of the current month to the end of today in the organization's zone; when
    only one is given, the other is open (the beginning, or the end of today).
    """
    zone = org_zone(org)
    start = (
        parse_moment(start_date, field="start_date", zone=zone, end=False) if start_date else None
    )
    end = parse_moment(end_date, field="end_date", zone=zone, end=True) if end_date else None
    if default_month:
        local = now.astimezone(zone)
        if start is None and end is None:
            start = local_month_start(now, tz=zone)
        if end is None:
            end = datetime.combine(local.date() + timedelta(days=1), time.min, tzinfo=zone)
    if start is not None and end is not None and start >= end:
        raise bad_parameter("start_date", "must be before end_date")
    return (
        start.astimezone(UTC) if start is not None else None,
        end.astimezone(UTC) if end is not None else None,
    )


def check_org_id(org: Organization, org_id: int | None) -> None:
    """An org_id other than the caller's own organization is a 404, never a 403."""
    if org_id is not None and org_id != org.pk:
        raise not_found(f"no organization {org_id}")


def principal_project_ids(principal: Principal) -> frozenset[int] | None:
    """The projects whose usage the caller reads, or None for the whole organization.

    A session token reads what its person sees on the pages (a member limited to
    projects: those projects). An API key belongs to one project and reads that
    project's usage only, as it sees only that project in /api/v1/projects: a key handed
    to one team does not reveal another's spend. Where that is every project of the
    organization (one project only), None: no project condition at all."""
    if principal.api_key is not None:
        project_id = principal.api_key.project_id
        others = Project.objects.filter(organization_id=principal.organization.pk).exclude(
            pk=project_id
        )
        return frozenset({project_id}) if others.exists() else None
    if principal.membership is None:
        return frozenset()  # no membership behind the session: nothing to see
    return project_ids_visible(membership=principal.membership)
