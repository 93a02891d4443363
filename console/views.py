from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.html import escape

from accounts.http import SESSION_ORG_KEY, OrgRequest, org_view
from accounts.projects import project_scope_for
from accounts.selectors import membership_for, memberships_of
from billing.selectors import finance_overview
from core.request_context import request_id_var
from insights.selectors.explorer import usage_received_through
from insights.selectors.summaries import usage_summaries


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to the organization they last opened, else their first one."""
    slug = request.session.get(SESSION_ORG_KEY)
    if slug and membership_for(user=request.user, org_slug=slug):
        return redirect("main", org_slug=slug)
    first = memberships_of(user=request.user).first()
    if first is None:
        return render(request, "console/no_organization.html", status=200)
    return redirect("main", org_slug=first.organization.slug)


@org_view()
def main(request: OrgRequest) -> HttpResponse:
    """The main page: balance, remaining usage time, last payment (the organization's) and
    usage summaries of ?project= (empty: All projects; one the person may not see: 404);
    with htmx, the switcher's partial only."""
    org = request.organization
    scope = project_scope_for(membership=request.membership, value=request.GET.get("project"))
    usage = {
        "scope": scope,
        "main_url": reverse("main", args=[org.slug]),
        "usage_summaries": usage_summaries(
            org=org, now=timezone.now(), tz=org.time_zone, projects=scope.ids
        ),
    }
    if request.htmx and request.htmx.target == "main-usage":
        response = render(request, "console/main.html#main-usage", usage)
    else:
        context = {
            "nav": "main",
            "overview": finance_overview(org=org),
            "can_manage": request.membership.can_manage,
            "can_pay": request.membership.can_pay,
            "received_through": usage_received_through(org=org),
            **usage,
        }
        response = render(request, "console/main.html", context)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


def favicon(request: HttpRequest) -> HttpResponse:
    """The icon (static/favicon.svg) for pages without an icon link: the admin's, say."""
    return redirect(static("favicon.svg"), permanent=True)


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 answer: the request id to quote, and no internals. Programs calling the
    API get it as JSON; people get a page that needs no database or session."""
    request_id = getattr(request, "request_id", None) or request_id_var.get() or "-"
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": "internal server error", "request_id": request_id}, status=500
        )
    try:
        body = loader.get_template("500.html").render({"request_id": request_id})
    except Exception:  # the shell itself failed (its static files, say): a bare page
        body = _BARE_500.format(request_id=escape(request_id))
    return HttpResponse(body, status=500)


_BARE_500 = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Something went wrong · Usage Console</title></head><body><main>
<h1>Something went wrong on our side</h1>
<p>The error has been logged. Try again in a moment; if it keeps happening, contact support
and quote this request id: <code>{request_id}</code></p><p><a href="/">Back to the console</a></p>
</main></body></html>"""
