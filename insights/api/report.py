"""GET /api/v1/usage/report: the usage explorer's figures for programs.

The same vocabulary and the same figures as Usage → Explore: a range, a metric,
groupings, filters and a bucket width, in the organization's time zone unless
`time_zone` names another (rollups are kept in the organization's zone, so another zone
is answered from the records themselves and costs more).

Whose usage: a session token's person sees what Explore shows them (a member limited to
projects: their projects' rows only; naming another project's key, controller or project
in a filter is a 400 naming it); an API key sees its own project's usage only
(insights/api/params.py `principal_project_ids`).
"""

from datetime import datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone
from ninja import Query, Router, Schema

from accounts.api_core import API_KEY_OR_SESSION
from accounts.models import Organization, Project
from billing.models import PriceModel
from core.api import MAX_PAGE_SIZE, APIError, bad_parameter, paginate
from core.calendar import org_zone
from insights.api.params import parse_moment, principal_project_ids
from insights.selectors.explorer import ReportTooCostly, UsageReport, usage_report
from insights.selectors.report_params import ReportParamError, report_filters_resolve
from insights.selectors.report_sources import DIMENSIONS, MAX_GROUPS, METRICS, OTHER
from usage.windows import BUCKETS

router = Router(tags=["Usage"], auth=API_KEY_OR_SESSION)

Metric = Literal[
    "credits",
    "input_tokens",
    "output_tokens",
    "tokens",
    "queries",
    "core_hours",
    "jobs",
    "worker_runtime",
]
Dimension = Literal["model", "api_key", "member", "endpoint", "controller", "kind", "project"]
Bucket = Literal["1h", "1d", "1w", "1mo"]
assert set(Metric.__args__) == set(METRICS)  # type: ignore[attr-defined]
assert set(Dimension.__args__) == set(DIMENSIONS)  # type: ignore[attr-defined]
assert set(Bucket.__args__) == set(BUCKETS)  # type: ignore[attr-defined]

TIME_HELP = (
    "An ISO 8601 time (without an offset: in the report's time zone) or a date "
    "(YYYY-MM-DD: that day's start; as `end`, the end of that day)."
)


class ReportValueOut(Schema):
    group: dict[str, str | int | None]
    value: str


class ReportBucketOut(Schema):
    start: datetime
    end: datetime
    values: list[ReportValueOut]


class ReportGroupOut(Schema):
    group: dict[str, str | int | None]
    label: str
    # The groups past the largest MAX_GROUPS, added up (`group` is then empty).
    other: bool = False
    other_groups: int = 0
    value: str
    share_percent: str | None
    previous: str
    change_percent: str | None


class UsageReportOut(Schema):
    metric: str
    unit: str
    start: datetime
    end: datetime
    time_zone: str
    bucket: str
    group_by: list[str]
    filters: dict[str, list[str | int]]
    total: str
    previous_start: datetime
    previous_total: str
    change_percent: str | None
    data_through: datetime | None
    live: bool
    groups: list[ReportGroupOut]
    count: int
    page: int
    page_size: int
    pages: int
    next_page: int | None
    previous_page: int | None
    buckets: list[ReportBucketOut]


def _value(report: UsageReport, value: Decimal) -> str:
    if report.integral:
        return str(int(value))
    return f"{value.normalize():f}" if value else "0"


def _percent(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"


def _group(report: UsageReport, key: tuple, model_names: dict, project_names: dict) -> dict:
    """The group's dimensions: model names, ids for keys, controllers and projects (and,
    grouped by project, its name as `project_name`)."""
    out: dict = {}
    if key and all(part == OTHER for part in key):
        return out
    for dim, value in zip(report.group_by, key, strict=True):
        out[dim] = model_names.get(value, value) if dim == "model" else value
        if dim == "project":
            out["project_name"] = project_names.get(value)
    return out


def report_answer(
    report: UsageReport, *, org: Organization, filters: dict, page: int, page_size: int
) -> dict:
    """The report as the API shows it: times in the report's zone, credits and other
    amounts as decimal strings, counts as whole numbers."""
    zone = ZoneInfo(report.tz)
    model_names = (
        dict(PriceModel.objects.values_list("pk", "name")) if "model" in report.group_by else {}
    )
    project_names = (
        dict(Project.objects.filter(organization=org).values_list("pk", "name"))
        if "project" in report.group_by
        else {}
    )
    groups = [(g, _group(report, g.key, model_names, project_names)) for g in report.groups]
    meta, buckets = paginate(list(enumerate(report.buckets)), page=page, page_size=page_size)
    return {
        "metric": report.metric,
        "unit": METRICS[report.metric],
        "start": report.start.astimezone(zone),
        "end": report.end.astimezone(zone),
        "time_zone": report.tz,
        "bucket": report.bucket,
        "group_by": list(report.group_by),
        "filters": filters,
        "total": _value(report, report.total),
        "previous_start": report.previous_start.astimezone(zone),
        "previous_total": _value(report, report.previous_total),
        "change_percent": _percent(report.change),
        "data_through": report.data_through,
        "live": report.live,
        "groups": [
            {
                "group": group,
                "label": g.label,
                "other": g.other,
                "other_groups": g.count if g.other else 0,
                "value": _value(report, g.total),
                "share_percent": _percent(g.share),
                "previous": _value(report, g.previous),
                "change_percent": _percent(g.change),
            }
            for g, group in groups
        ],
        **meta,
        "buckets": [
            {
                "start": lo.astimezone(zone),
                "end": hi.astimezone(zone),
                "values": [
                    {"group": group, "value": _value(report, g.series[index])}
                    for g, group in groups
                ],
            }
            for index, (lo, hi) in buckets
        ],
    }


def _zone(org, time_zone: str | None) -> str:
    if not time_zone:
        return str(org_zone(org))
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise bad_parameter("time_zone", "is not an IANA time zone (e.g. Europe/Paris)") from None
    return time_zone


def _report_or_bad_parameter(
    org,
    *,
    start: datetime,
    end: datetime,
    metric: str,
    group_by: tuple[str, ...],
    raw_filters: dict[str, list[str]],
    bucket: str,
    tz: str,
    projects: frozenset[int] | None,
) -> UsageReport:
    """The report; a bad parameter (a filter value, the bucket, the range) is answered
    as the API's error naming it."""
    try:
        filters = report_filters_resolve(
            org=org,
            filters=raw_filters,
            field_name=lambda dim: f"filter[{dim}]",
            project_ids=projects,
        )
        return usage_report(
            org=org,
            start=start,
            end=end,
            metric=metric,
            group_by=group_by,
            filters=filters,
            bucket=bucket,
            tz=tz,
            now=timezone.now(),
            projects=projects,
        )
    except ReportParamError as exc:
        raise bad_parameter(exc.field, exc.message) from None
    except ReportTooCostly as exc:
        raise APIError(422, "report_too_costly", exc.message, limit_seconds=exc.seconds) from None
    except ValueError as exc:
        field = "bucket" if "bucket" in str(exc) or "hourly" in str(exc) else "end"
        raise bad_parameter(field, str(exc)) from None


@router.get(
    "/report",
    response=UsageReportOut,
    url_name="usage_report",
    summary="Usage over any range, grouped and bucketed",
)
def usage_report_view(
    request,
    start: str = Query(..., description=TIME_HELP),
    end: str = Query(..., description=TIME_HELP),
    metric: Metric = Query("credits", description="What to add up."),
    group_by: list[Dimension] = Query(
        [],
        description=(
            "Group by these dimensions (repeat the parameter for several). At most "
            f"{MAX_GROUPS} groups are answered, the largest by the metric; the rest are "
            'added up as one group labelled "Other (N groups)", with `other` true.'
        ),
    ),
    bucket: Bucket = Query(
        "1d", description="Bucket width: 1h (ranges up to 31 days), 1d, 1w, 1mo."
    ),
    time_zone: str | None = Query(None, description="IANA zone. Default: the organization's."),
    filter_model: list[str] = Query([], alias="filter[model]", description="Model names."),
    filter_api_key: list[str] = Query([], alias="filter[api_key]", description="API key ids."),
    filter_member: list[str] = Query([], alias="filter[member]", description="Member emails."),
    filter_endpoint: list[str] = Query([], alias="filter[endpoint]", description="Endpoints."),
    filter_controller: list[str] = Query(
        [], alias="filter[controller]", description="Controller ids."
    ),
    filter_kind: list[str] = Query(
        [], alias="filter[kind]", description="Record kinds: query, worker_session, job."
    ),
    filter_project: list[str] = Query(
        [],
        alias="filter[project]",
        description="Project ids (GET /api/v1/projects); only projects the caller sees.",
    ),
    page: int = Query(1, ge=1, description="Page of buckets, from 1."),
    page_size: int = Query(
        MAX_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"Buckets per page (at most {MAX_PAGE_SIZE}).",
    ),
):
    """The metric per group and bucket over [start, end), each group's total, share and
    change against the previous period of the same length. Figures equal Usage → Explore's
    for the same parameters. A session sees the projects its person sees; an API key its
    own project only. One report may spend USAGE_REPORT_TIME_LIMIT seconds (10 by
    default) in the database; past that the answer is a 422 `report_too_costly` naming
    the limit."""
    org = request.auth.organization
    tz = _zone(org, time_zone)
    zone = ZoneInfo(tz)
    lo = parse_moment(start, field="start", zone=zone, end=False)
    hi = parse_moment(end, field="end", zone=zone, end=True)
    raw_filters = {
        "model": filter_model,
        "api_key": filter_api_key,
        "member": filter_member,
        "endpoint": filter_endpoint,
        "controller": filter_controller,
        "kind": filter_kind,
        "project": filter_project,
    }
    report = _report_or_bad_parameter(
        org,
        start=lo,
        end=hi,
        metric=metric,
        group_by=tuple(dict.fromkeys(group_by)),
        raw_filters=raw_filters,
        bucket=bucket,
        tz=tz,
        projects=principal_project_ids(request.auth),
    )
    shown = {dim: values for dim, values in raw_filters.items() if values}
    return report_answer(report, org=org, filters=shown, page=page, page_size=page_size)
