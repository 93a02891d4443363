"""Usage → Explore: any range, metric, grouping, filters and granularity, as a page with
a stacked chart, a table of groups against the previous period, and its CSV.

Every state is a URL (the form is a GET); with htmx the form and the quick picks swap
the form and its results (`#explore`) and push the URL, so back and forward work.

A member limited to projects sees their projects' usage only, in the page and both CSVs,
and is offered only their projects' keys, controllers, members and endpoints to filter
on; naming another project's key, controller or project is an error on that filter.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers

from accounts.http import OrgRequest, org_view
from accounts.projects import project_ids_visible
from core.exports import csv_download
from insights import charts
from insights.forms import ExploreForm
from insights.selectors.explorer import ReportTooCostly, UsageReport, usage_report
from insights.selectors.report_params import (
    ReportParamError,
    report_filter_options,
    report_filters_resolve,
)
from insights.selectors.report_sources import DIMENSIONS, METRIC_UNITS, METRICS
from usage.windows import BUCKET_LABELS, QUICK_RANGES, quick_range

DEFAULTS = {"metric": "credits", "group_by": "model", "bucket": "1d"}


def _choices() -> dict:
    return {
        "metric": list(METRICS.items()),
        "group_by": list(DIMENSIONS.items()),
        "bucket": list(BUCKET_LABELS.items()),
    }


def _params(request: OrgRequest, now: datetime, zone: ZoneInfo) -> QueryDict:
    """The query string with defaults filled in: this month, credits by model, per day."""
    data = request.GET.copy()
    for name, value in DEFAULTS.items():
        if name not in data:
            data[name] = value
    if not data.get("start"):
        start, _end = quick_range("this_month", now=now, tz=str(zone))
        data["start"] = start.astimezone(zone).strftime("%Y-%m-%dT%H:%M")
    if not data.get("end"):
        end = (now + timedelta(minutes=1)).astimezone(zone)
        data["end"] = end.strftime("%Y-%m-%dT%H:%M")
    return data


def _report(
    form: ExploreForm, org, now: datetime, projects: frozenset[int] | None
) -> UsageReport | None:
    if not form.is_valid():
        return None
    data = form.cleaned_data
    filters = {dim: data.get(dim) or [] for dim in form.filter_names}
    try:
        resolved = report_filters_resolve(org=org, filters=filters, project_ids=projects)
        return usage_report(
            org=org,
            start=data["start"],
            end=data["end"],
            metric=data["metric"],
            group_by=(data["group_by"],) if data["group_by"] else (),
            filters=resolved,
            bucket=data["bucket"],
            now=now,
            projects=projects,
        )
    except ReportParamError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    except ReportTooCostly as exc:
        form.add_error(None, exc.message[0].upper() + exc.message[1:] + ".")
    except ValueError as exc:
        field, message = _range_error(str(exc), data)
        form.add_error(field, message)
    return None


def _range_error(message: str, data: dict) -> tuple[str, str]:
    """The field a bad range or bucket belongs to, and what to do about it."""
    if "hourly" in message:
        days = (data["end"] - data["start"]).total_seconds() / 86_400
        return "bucket", (
            f"Hour is for ranges of up to 31 days; this range is {days:,.0f} days. "
            "Choose Day, or a shorter range."
        )
    if "bucket" in message:
        return "bucket", message[0].upper() + message[1:] + "."
    return "end", "The end must be after the start."


def _quick_links(request: OrgRequest, params: QueryDict, now: datetime, zone: ZoneInfo):
    base = reverse("usage:explore", args=[request.organization.slug])
    links = []
    for name, label in QUICK_RANGES.items():
        start, end = quick_range(name, now=now, tz=str(zone))
        query = params.copy()
        query["start"] = start.astimezone(zone).strftime("%Y-%m-%dT%H:%M")
        query["end"] = (
            (end if end < now else now + timedelta(minutes=1))
            .astimezone(zone)
            .strftime("%Y-%m-%dT%H:%M")
        )
        current = query["start"] == params.get("start") and query["end"] == params.get("end")
        links.append({"label": label, "url": f"{base}?{query.urlencode()}", "current": current})
    return links


def _explore(request: OrgRequest) -> tuple[ExploreForm, UsageReport | None, QueryDict, dict]:
    org = request.organization
    now = timezone.now()
    zone = ZoneInfo(org.time_zone or "UTC")
    params = _params(request, now, zone)
    projects = project_ids_visible(membership=request.membership)
    options = report_filter_options(org=org, now=now, project_ids=projects)
    with timezone.override(zone):
        form = ExploreForm(params, choices=_choices(), options=options)
        report = _report(form, org, now, projects)
    extra = {"now": now, "zone": zone, "quick_links": _quick_links(request, params, now, zone)}
    return form, report, params, extra


@org_view()
def explore(request: OrgRequest) -> HttpResponse:
    """Usage → Explore, or only its results for htmx."""
    form, report, params, extra = _explore(request)
    org = request.organization
    template = "usage/explore.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#explore"
    context = {
        "nav": "usage",
        "form": form,
        "report": report,
        "figure": charts.explore_figure(report) if report and report.groups else None,
        "csv_url": reverse("usage:explore_csv", args=[org.slug]) + "?" + params.urlencode(),
        "groups_csv_url": (
            reverse("usage:explore_groups_csv", args=[org.slug]) + "?" + params.urlencode()
        ),
        "explore_url": reverse("usage:explore", args=[org.slug]),
        **extra,
    }
    with timezone.override(extra["zone"]):
        response = render(request, template, context, status=200 if form.is_valid() else 400)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _value(report: UsageReport, value):
    """A number cell: whole for counts, the exact decimal (no exponent) otherwise."""
    if report.integral:
        return int(value)
    return Decimal(format(value.normalize(), "f")) if value else Decimal(0)


def _csv_rows(report: UsageReport) -> Iterator[list]:
    """One row per bucket and group (long form): what a spreadsheet or pandas reads as
    it is. The bucket is its start, in the organization's zone with its offset."""
    zone = ZoneInfo(report.tz)
    unit = METRIC_UNITS[report.metric]
    yield ["bucket", "group", "value", "unit"]
    for index, (lo, _hi) in enumerate(report.buckets):
        for g in report.groups:
            yield [lo.astimezone(zone).isoformat(), g.label, _value(report, g.series[index]), unit]


def _summary_rows(report: UsageReport) -> Iterator[list]:
    """One row per group: its total, share and change against the previous period."""
    unit = METRIC_UNITS[report.metric]
    yield ["group", "value", "unit", "share_percent", "previous_period", "change_percent"]
    for g in report.groups:
        yield [
            g.label,
            _value(report, g.total),
            unit,
            "" if g.share is None else g.share,
            _value(report, g.previous),
            "" if g.change is None else g.change,
        ]


def _download(request: OrgRequest, rows_of, suffix: str) -> HttpResponse:
    form, report, _params_used, _extra = _explore(request)
    if report is None:
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
    rows = rows_of(report)
    header = next(rows)
    stamp = report.start.astimezone(ZoneInfo(report.tz)).strftime("%Y%m%d")
    filename = f"usage-{report.metric}-{stamp}{suffix}.csv"
    return csv_download(header, rows, filename=filename, bom=False)


@org_view()
def explore_csv(request: OrgRequest) -> HttpResponse:
    """The explorer's series as one long-form table (bucket, group, value, unit)."""
    return _download(request, _csv_rows, "")


@org_view()
def explore_groups_csv(request: OrgRequest) -> HttpResponse:
    """The explorer's group table (totals, shares, the previous period) as its own CSV."""
    return _download(request, _summary_rows, "-groups")
