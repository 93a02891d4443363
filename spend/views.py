"""Spend controls' pages: Settings → Budgets (budget cards, key pause and resume) and
Usage → Estimate. Thin: parse, check permission, one service or selector, render."""

import json

from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.views.decorators.http import require_http_methods, require_POST

from accounts.confirm import Confirmation, confirm_page
from accounts.http import OrgRequest, org_view
from accounts.models import APIKey, Project
from accounts.projects import apikeys_visible, project_ids_visible, projects_key_manageable
from billing.models import PriceModel
from core.calendar import org_zone
from spend.estimate import InvalidMessages, message_tokens, messages_validate
from spend.estimate import request_cost_estimate as cost_estimate
from spend.forms import BudgetForm, BudgetLevelsForm, EstimateForm
from spend.models import BudgetScope
from spend.ratelimit import limits_for
from spend.selectors.budgets import (
    budget_figures,
    budgets_for_request,
    budgets_of,
    budgets_visible,
    keys_spend_flags,
)
from spend.services.budgets import (
    BudgetInvalid,
    apikey_pause,
    apikey_resume,
    budget_create,
    budget_delete,
    budget_update,
)
from usage.members import member_normalize
from usage.windows import period_of

BUDGET_PARTIAL = "budget-cards"


def _keys(org):
    return APIKey.objects.filter(organization=org, revoked_at__isnull=True).order_by("name")


def _projects(request: OrgRequest) -> list:
    """The projects a budget may name: the active ones this person manages."""
    return list(projects_key_manageable(membership=request.membership).order_by("name"))


def _budgets_seen(request: OrgRequest):
    """The budgets this person sees: a member limited to projects, theirs only."""
    ids = project_ids_visible(membership=request.membership)
    return budgets_visible(org=request.organization, project_ids=ids)


def _budgets_context(request: OrgRequest, form: BudgetForm | None = None) -> dict:
    org = request.organization
    now = timezone.now()
    ids = project_ids_visible(membership=request.membership)
    keys = [k for k in _keys(org) if ids is None or k.project_id in ids]
    month = period_of("month", now=now, tz=org_zone(org)).start
    flags = keys_spend_flags(org=org, since=month)
    return {
        "nav": "settings",
        "cards": budget_figures(org=org, budgets=list(_budgets_seen(request)), now=now),
        "keys": [(k, flags.get(k.pk, {})) for k in keys],
        "form": form or BudgetForm(keys=keys, projects=_projects(request)),
        "now": now,
    }


@org_view()
def budgets(request: OrgRequest) -> HttpResponse:
    """Settings → Budgets: each budget's spent, reserved, left, reset and projection."""
    template = "usage/budgets.html"
    if request.htmx:  # type: ignore[attr-defined]
        template += f"#{BUDGET_PARTIAL}"
    return render(request, template, _budgets_context(request))


@org_view(manage=True)
@require_POST
def budget_add(request: OrgRequest) -> HttpResponse:
    org = request.organization
    form = BudgetForm(request.POST, keys=list(_keys(org)), projects=_projects(request))
    if form.is_valid():
        data = form.cleaned_data
        try:
            budget_create(
                org=org,
                scope=data["scope"],
                period=data["period"],
                soft_limit=data["soft_limit"],
                hard_limit=data["hard_limit"],
                api_key_id=data["api_key"] if data["scope"] == "api_key" else None,
                member=data["member"] if data["scope"] == "member" else "",
                project_id=data["project"] if data["scope"] == "project" else None,
                actor=request.user,  # type: ignore[arg-type]
            )
        except BudgetInvalid as exc:
            # The service names the field; the form says it as a sentence beside that field.
            if exc.field in form.fields:
                form.add_error(exc.field, f"{form[exc.field].label} {exc.message}.")
            else:
                form.add_error(None, f"{exc.field.replace('_', ' ').capitalize()} {exc.message}.")
        else:
            messages.success(request, "Budget saved.")
            return redirect("usage:budgets", request.organization.slug)
    return render(request, "usage/budgets.html", _budgets_context(request, form), status=400)


@org_view(manage=True)
@require_POST
def budget_edit(request: OrgRequest, budget_id: int) -> HttpResponse:
    budget = get_object_or_404(budgets_of(org=request.organization), pk=budget_id)
    form = BudgetLevelsForm(request.POST)
    if form.is_valid():
        try:
            budget_update(
                budget=budget,
                changes=form.cleaned_data,
                actor=request.user,  # type: ignore[arg-type]
            )
        except BudgetInvalid as exc:
            level = _LEVEL_WORDS.get(exc.field, exc.field.replace("_", " ").capitalize())
            messages.error(request, f"Not saved: {level} {exc.message}.")
        else:
            messages.success(request, f"Updated {_budget_name(budget)}.")
    else:
        messages.error(request, "Not saved: levels must be zero or more credits.")
    return redirect("usage:budgets", request.organization.slug)


_LEVEL_WORDS = {"soft_limit": "the soft level", "hard_limit": "the hard level"}
_PERIOD_WORDS = {"day": "daily", "week": "weekly", "month": "monthly"}
_SCOPE_WORDS = {"organization": "organization's", "api_key": "API key", "member": "member"}


def _budget_name(budget) -> str:
    """ "the monthly API key budget for ci-gateway", as a sentence names it."""
    words = f"the {_PERIOD_WORDS.get(budget.period, budget.period)} {_SCOPE_WORDS[budget.scope]}"
    subject = "" if budget.scope == "organization" else f" for {budget.subject_label}"
    return f"{words} budget{subject}"


@org_view(manage=True)
@require_http_methods(["GET", "POST"])
def budget_remove(request: OrgRequest, budget_id: int) -> HttpResponse:
    budget = get_object_or_404(budgets_of(org=request.organization), pk=budget_id)
    name = _budget_name(budget)
    if request.method == "GET":
        hard = (
            " and its hard level no longer refuses requests"
            if budget.hard_limit is not None
            else ""
        )
        return confirm_page(
            request,
            Confirmation(
                title=f"Remove {name}?",
                consequence=f"Its alerts stop{hard}. Spend already recorded is kept.",
                action="Remove budget",
                back=reverse("usage:budgets", args=[request.organization.slug]),
            ),
        )
    budget_delete(budget=budget, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, f"Removed {name}.")
    return redirect("usage:budgets", request.organization.slug)


def _next(request: OrgRequest) -> str:
    """The page to go back to (one of this organization's), else Budgets."""
    target = request.POST.get("next") or request.GET.get("next", "")
    if target.startswith(f"/o/{request.organization.slug}/") and "//" not in target:
        return target
    return reverse("usage:budgets", args=[request.organization.slug])


def _back(request: OrgRequest) -> HttpResponse:
    return redirect(_next(request))


@org_view(manage=True)
@require_http_methods(["GET", "POST"])
def key_pause(request: OrgRequest, key_id: int) -> HttpResponse:
    """Pause a key: authorize answers 402 key_paused; nothing else about it changes."""
    key = get_object_or_404(APIKey.objects.filter(organization=request.organization), pk=key_id)
    if request.method == "GET":
        return confirm_page(
            request,
            Confirmation(
                title=f"Pause the API key \u201c{key.name}\u201d?",
                consequence="Requests the gateway authorizes with it are refused "
                "(402 key_paused) until you resume it; usage already authorized still counts.",
                action="Pause key",
                back=_next(request),
            ),
        )
    apikey_pause(key=key, by=request.user)  # type: ignore[arg-type]
    messages.success(request, f"{key.name} is paused: its authorizations are refused.")
    return _back(request)


@org_view(manage=True)
@require_POST
def key_resume(request: OrgRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(APIKey.objects.filter(organization=request.organization), pk=key_id)
    apikey_resume(key=key, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, f"{key.name} is resumed.")
    return _back(request)


def _estimate_messages(prompt: str) -> list[dict]:
    text = prompt.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return messages_validate(parsed)
    return messages_validate([{"role": "user", "content": prompt}])


@org_view()
def estimate(request: OrgRequest) -> HttpResponse:
    """Usage → Estimate: tokens and worst-case cost of a request, and what it would be
    in the budgets that apply (a GET: every estimate is a URL)."""
    org = request.organization
    models = list(PriceModel.objects.filter(is_active=True).order_by("name"))
    # The keys this person sees: none for billing, their projects' for a limited member
    # (another key's id is then not a choice: the form answers 400).
    membership = request.membership
    keys = (
        list(
            apikeys_visible(membership=membership).filter(revoked_at__isnull=True).order_by("name")
        )
        if membership.can_see_keys
        else []
    )
    form = EstimateForm(request.GET or None, models=models, keys=keys)
    context: dict = {"nav": "usage", "form": form, "result": None}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            msgs = _estimate_messages(data["prompt"])
            tokens = message_tokens(msgs)
        except InvalidMessages as exc:
            form.add_error("prompt", f"{exc.field}: {exc}")
        else:
            model = next(m for m in models if m.name == data["model"])
            result = cost_estimate(
                model=model, input_tokens=tokens, max_output_tokens=data["max_output_tokens"]
            )
            member = member_normalize(data["member"] or "")
            cards = budgets_for_request(org=org, api_key_id=data["api_key"], member=member)
            context |= {
                "result": result,
                "message_count": len(msgs),
                "budget_shares": [
                    (card, result.estimated_cost / card.level * 100 if card.level else None)
                    for card in cards
                ],
            }
    template = "usage/estimate.html"
    if request.htmx and form.is_bound:  # type: ignore[attr-defined]
        template += "#estimate-result"
    return render(request, template, context, status=400 if form.errors else 200)


def project_limits_section(request: HttpRequest, project: Project) -> SafeString:
    """The budgets (the organization's, the project's, its keys') and the keys' rate
    limits shown on a project's page (registered with accounts in SpendConfig.ready)."""
    org = project.organization
    keys = list(_keys(org).filter(project=project))
    budgets = budgets_of(org=org).filter(
        Q(scope=BudgetScope.ORGANIZATION)
        | Q(scope=BudgetScope.PROJECT, project=project)
        | Q(scope=BudgetScope.API_KEY, api_key__in=keys)
    )
    context = {
        "cards": budget_figures(org=org, budgets=list(budgets)),
        "keys": [(k, *limits_for(k)) for k in keys],
    }
    return render_to_string("usage/_project_limits.html", context, request=request)
