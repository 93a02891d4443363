"""The usage panel: one page, its htmx partials, and the timeline's CSV.

The window switcher's links carry href and hx-get: without JavaScript they load the
page for that window; with htmx they fetch only the partial named by HX-Target (the
partial's name is the id of the element it replaces) and push the window's URL.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers

from accounts.http import OrgRequest, org_view
from accounts.models import Organization
from accounts.projects import ProjectScope, project_scope_for
from core.exports import csv_download
from insights import charts
from insights.selectors import panel as selectors
from insights.selectors import panel_controllers, panel_keys
from insights.selectors.explorer import usage_received_through
from rollups.selectors.coverage import RollupCoverage, rollup_coverage
from rollups.selectors.engine import Projects
from usage.windows import PANEL_WINDOWS, Window, panel_window

# The partials a htmx request may ask for, by the id of the element they replace.
PANEL_PARTIALS = ("usage-window", "controller-load")
DEFAULT_PARTIAL = "usage-window"
CSV_HEADER = (
    "date",
    "submitted",
    "completed",
    "failed",
    "cancelled",
    "core_hours_managed",
    "core_hours_byoc",
)
CORE_HOURS_PLACES = Decimal("0.000001")


def _controller_context(
    org: Organization, window: Window, now: datetime, coverage: RollupCoverage, projects: Projects
) -> dict:
    return {
        "controllers": panel_controllers.controller_load(
            org=org,
            start=window.start,
            end=window.end,
            now=now,
            coverage=coverage,
            projects=projects,
        )
    }


def _window_context(
    org: Organization, window: Window, now: datetime, coverage: RollupCoverage, projects: Projects
) -> dict:
    tz = org.time_zone
    start, end = window.start, window.end
    cover = {"coverage": coverage, "projects": projects}
    timeline = selectors.job_timeline(org=org, now=now, tz=tz, **cover)
    trend = selectors.token_trend(org=org, start=start, end=end, tz=tz, **cover)
    keys = panel_keys.api_key_activity(org=org, start=start, end=end, **cover)
    return {
        "overview": selectors.jobs_overview(org=org, start=start, end=end, **cover),
        "timeline": timeline,
        "timeline_figure": charts.timeline_figure(timeline),
        "timeline_summary": charts.timeline_summary(timeline),
        "timeline_jobs": sum(day.submitted for day in timeline),
        "key_cards": panel_keys.key_recent_load(org=org, cards=keys, start=start, end=end),
        "allocation": selectors.tokens_month_to_date(org=org, now=now, tz=tz, **cover),
        "token_trend": trend,
        "token_figure": None if trend.empty else charts.token_trend_figure(trend),
        "token_summary": charts.token_trend_summary(trend),
        "models": selectors.queries_by_model(org=org, start=start, end=end, **cover),
        "endpoints": selectors.top_endpoints(org=org, start=start, end=end, **cover),
        "members": selectors.usage_by_member(org=org, start=start, end=end, **cover),
        **_controller_context(org, window, now, coverage, projects),
    }


@org_view()
def usage_panel(request: OrgRequest) -> HttpResponse:
    """The usage panel for ?window= (24h, 7d, 30d by default, all) and ?project= (empty:
    All projects; one the person may not see: 404), or one of its partials."""
    org = request.organization
    now = timezone.now()
    window = panel_window(request.GET.get("window"), now=now)
    scope = project_scope_for(membership=request.membership, value=request.GET.get("project"))
    template = "usage/panel.html"
    partial = None
    if request.htmx and not request.htmx.history_restore_request:
        target = request.htmx.target
        partial = target if target in PANEL_PARTIALS else DEFAULT_PARTIAL
        template = f"{template}#{partial}"
    # Which days the rollups answer: looked up once for every figure of the page.
    coverage = rollup_coverage(org=org, now=now)
    if partial == "controller-load":
        data = _controller_context(org, window, now, coverage, scope.ids)
    else:
        data = _window_context(org, window, now, coverage, scope.ids)
    context = {
        "nav": "usage",
        "panel_url": reverse("usage:panel", args=[org.slug]),
        "window": window,
        "scope": scope,
        "window_keep": [("window", window.key)],
        # The window switcher's and the CSV's links keep the project chosen.
        "project_query": urlencode({"project": scope.param}) if scope.chosen else "",
        "windows": [(key, label) for key, (label, _length) in PANEL_WINDOWS.items()],
        "now": now,
        # How current the figures are: the newest batch they include.
        "received_through": usage_received_through(org=org),
        "explore_range": _explore_range(window, ZoneInfo(org.time_zone), scope),
        **data,
    }
    with timezone.override(ZoneInfo(org.time_zone)):
        response = render(request, template, context)
    # The same URL answers a whole page or a partial: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


def _minute_ceil(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def _explore_range(window: Window, zone: ZoneInfo, scope: ProjectScope) -> str:
    """The window (and the project chosen) as Explore's parameters: the panel's figures
    cover whole minutes, from the minute after the window's start to the minute after now
    (rollups/selectors/coverage.py), so Explore links reproduce them exactly. Empty for
    all time and All projects."""
    params: dict[str, str] = {"project": scope.param} if scope.chosen else {}
    if window.start is not None:
        params |= {
            edge: _minute_ceil(moment).astimezone(zone).strftime("%Y-%m-%dT%H:%M")
            for edge, moment in (("start", window.start), ("end", window.end))
        }
    return urlencode(params)


def _core_hours(value: Decimal) -> str:
    return format(value.quantize(CORE_HOURS_PLACES), "f")


@org_view()
def timeline_csv(request: OrgRequest) -> HttpResponse:
    """The 14-day timeline's raw daily figures as CSV (days in the organization's zone), of
    the project chosen (?project=, as the panel)."""
    org = request.organization
    now = timezone.now()
    scope = project_scope_for(membership=request.membership, value=request.GET.get("project"))
    days = selectors.job_timeline(org=org, now=now, tz=org.time_zone, projects=scope.ids)
    rows = (
        (
            d.day.isoformat(),
            d.submitted,
            d.completed,
            d.failed,
            d.cancelled,
            _core_hours(d.core_hours_managed),
            _core_hours(d.core_hours_byoc),
        )
        for d in days
    )
    project = f"-project-{scope.param}" if scope.chosen else ""
    filename = f"usage-timeline-{org.slug}{project}-{days[-1].day.isoformat()}.csv"
    return csv_download(CSV_HEADER, rows, filename=filename, bom=False)
