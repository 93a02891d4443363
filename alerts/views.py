"""Alerts pages under the organization's Settings: rules (owners and admins change them,
every member reads them), the notifications list with delivery attempts, dismissals."""

from urllib.parse import urlsplit

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.confirm import Confirmation, confirm_page
from accounts.http import OrgRequest, org_view
from accounts.projects import project_ids_visible
from alerts.forms import AlertRuleForm
from alerts.models import AlertKind, DeliveryChannel
from alerts.preview import alert_rule_preview as preview_for
from alerts.selectors import (
    alert_deliveries,
    alert_notification_for,
    alert_notifications,
    alert_rule_for,
    alert_rules,
    alert_settings_for,
)
from alerts.services import (
    AlertRuleInvalid,
    alert_notification_dismiss,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    alert_webhook_secret_rotate,
)

NOTIFICATIONS_PAGE_SIZE = 25


@org_view()
@require_GET
def alerts_page(request: OrgRequest) -> HttpResponse:
    """The organization's rules, its webhook secret (owners and admins) and recent alerts;
    a member limited to projects sees their projects' rules and alerts only."""
    org = request.organization
    project_ids = project_ids_visible(membership=request.membership)
    can_manage = request.membership.can_manage
    settings_row = alert_settings_for(org=org) if can_manage else None
    response = render(
        request,
        "alerts/alerts.html",
        {
            "nav": "settings",
            "rules": alert_rules(org=org, project_ids=project_ids),
            "recent": alert_notifications(org=org, project_ids=project_ids)[:5],
            "can_manage": can_manage,
            "limited": project_ids is not None,
            "webhook_secret": settings_row.webhook_secret if settings_row else None,
        },
    )
    # The page shows the webhook signing secret: never kept in a cache or the history.
    response["Cache-Control"] = "no-store"
    return response


def _preview(request: OrgRequest, form: AlertRuleForm):
    preview_input = form.preview_input()
    if preview_input is None:
        return None
    kind, threshold, project_id = preview_input
    return preview_for(
        org=request.organization, kind=kind, threshold=threshold, project_id=project_id
    )


def _form_page(request: OrgRequest, form: AlertRuleForm, rule=None, status: int = 200):
    preview = _preview(request, form)
    return render(
        request,
        "alerts/alerts_rule_form.html",
        {"nav": "settings", "form": form, "rule": rule, "preview": preview},
        status=status,
    )


def _save(request: OrgRequest, form: AlertRuleForm, rule=None) -> HttpResponse:
    if request.POST.get("action") == "preview":
        return _form_page(request, form, rule)
    if not form.is_valid():
        return _form_page(request, form, rule, status=400)
    try:
        if rule is None:
            alert_rule_create(
                org=request.organization, fields=form.rule_fields(), actor=request.user
            )
        else:
            alert_rule_update(rule=rule, fields=form.rule_fields(), actor=request.user)
    except AlertRuleInvalid as exc:
        form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        return _form_page(request, form, rule, status=400)
    messages.success(request, "Alert rule saved.")
    return redirect("accounts:alerts:rules", request.organization.slug)


@org_view(manage=True)
@require_http_methods(["GET", "POST"])
def rule_new(request: OrgRequest) -> HttpResponse:
    """Add a rule; the form previews when it would have fired over the last 30 days."""
    if request.method == "POST":
        return _save(request, AlertRuleForm(request.POST, org=request.organization))
    kind = request.GET.get("kind")
    blank = AlertRuleForm.blank(
        org=request.organization, kind=kind if kind in AlertKind.values else AlertKind.TOKENS
    )
    return _form_page(request, blank)


@org_view(manage=True)
@require_http_methods(["GET", "POST"])
def rule_edit(request: OrgRequest, rule_id: int) -> HttpResponse:
    rule = alert_rule_for(org=request.organization, rule_id=rule_id)
    if rule is None:
        raise Http404("No such alert rule")
    if request.method == "POST":
        return _save(request, AlertRuleForm(request.POST, org=request.organization), rule)
    return _form_page(request, AlertRuleForm.for_rule(rule), rule)


@org_view(manage=True)
@require_GET
def rule_preview(request: OrgRequest) -> HttpResponse:
    """The preview partial for the kind and threshold typed so far (htmx, on change)."""
    form = AlertRuleForm(request.GET, org=request.organization)
    preview = _preview(request, form)
    return render(
        request, "alerts/alerts_rule_form.html#alert-preview", {"form": form, "preview": preview}
    )


@org_view(manage=True)
@require_http_methods(["GET", "POST"])
def rule_delete(request: OrgRequest, rule_id: int) -> HttpResponse:
    rule = alert_rule_for(org=request.organization, rule_id=rule_id)
    if rule is None:
        raise Http404("No such alert rule")
    name = f"the alert rule \u201c{rule.get_kind_display()}\u201d"
    if request.method == "GET":
        return confirm_page(
            request,
            Confirmation(
                title=f"Delete {name}?",
                consequence="It stops firing; notifications it already sent stay listed.",
                action="Delete rule",
                back=reverse("accounts:alerts:rules", args=[request.organization.slug]),
            ),
        )
    alert_rule_delete(rule=rule, actor=request.user)
    messages.success(request, f"Deleted {name}.")
    return redirect("accounts:alerts:rules", request.organization.slug)


@org_view(manage=True)
@require_http_methods(["GET", "POST"])
def webhook_secret_rotate(request: OrgRequest) -> HttpResponse:
    if request.method == "GET":
        return confirm_page(
            request,
            Confirmation(
                title="Rotate the webhook signing secret?",
                consequence="Deliveries are signed with a new secret from now on: receivers "
                "that check signatures with the current one refuse them until you update them.",
                action="Rotate secret",
                back=reverse("accounts:alerts:rules", args=[request.organization.slug]),
            ),
        )
    alert_webhook_secret_rotate(org=request.organization, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, "Rotated the webhook secret: update your receivers.")
    return redirect("accounts:alerts:rules", request.organization.slug)


@org_view()
@require_GET
def notifications(request: OrgRequest) -> HttpResponse:
    """Every notification, newest first (a member limited to projects: those of their
    projects' rules); owners and admins also see delivery attempts."""
    org = request.organization
    seen = alert_notifications(
        org=org, project_ids=project_ids_visible(membership=request.membership)
    )
    page = Paginator(seen, NOTIFICATIONS_PAGE_SIZE).get_page(request.GET.get("page"))
    can_manage = request.membership.can_manage
    deliveries: dict[int, list] = {}
    if can_manage:
        for delivery in alert_deliveries(org=org, notification_ids=[n.pk for n in page]):
            deliveries.setdefault(delivery.notification_id, []).append(delivery)
    rows = [(n, deliveries.get(n.pk, [])) for n in page]
    context = {
        "nav": "settings",
        "page": page,
        "rows": rows,
        "can_manage": can_manage,
        "webhook": DeliveryChannel.WEBHOOK,
    }
    if request.htmx and request.htmx.target == "notifications":
        return render(request, "alerts/alerts_notifications.html#notifications", context)
    return render(request, "alerts/alerts_notifications.html", context)


@org_view()
@require_POST
def notification_dismiss(request: OrgRequest, notification_id: int) -> HttpResponse:
    """Hide a notification's banner for the requesting member."""
    notification = alert_notification_for(
        org=request.organization,
        notification_id=notification_id,
        project_ids=project_ids_visible(membership=request.membership),
    )
    if notification is None:
        raise Http404("No such notification")
    alert_notification_dismiss(notification=notification, user=request.user)
    if request.htmx:
        # The banner is swapped for the next notification, or for nothing.
        page = urlsplit(request.htmx.current_url or "")
        banner_next = page.path + (f"?{page.query}" if page.query else "")
        banner = render_to_string(
            "alerts/_alert_banner.html", {"banner_next": banner_next}, request=request
        )
        return HttpResponse(banner.strip())
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect("accounts:alerts:notifications", request.organization.slug)
    return redirect(target)
