"""Finance pages: the dashboard, the Add Credit flow, auto-recharge, CSV and webhooks."""

import logging
import uuid

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.http import OrgRequest, org_view
from accounts.models import BILLING_DETAILS_ROLES, FINANCE_ROLES, Role
from accounts.projects import project_scope_for
from billing import charts
from billing.cards import CardError
from billing.document_render import (
    STATEMENT_CSV_HEADER,
    receipt_context,
    receipt_pdf,
    statement_context,
    statement_csv_rows,
    statement_pdf,
)
from billing.forms import (
    AmountForm,
    AutoRechargeForm,
    BillingDetailsForm,
    CardForm,
    HostedCheckoutForm,
    SavedCardForm,
)
from billing.models import PaymentStatus
from billing.money import dollars_display
from billing.providers import TEST_CARDS, WebhookSignatureError, provider_get, stripe_event_verify
from billing.selectors import (
    LEDGER_EXPORT_FIELDS,
    billing_details_of,
    credit_balance,
    finance_overview,
    ledger_entries,
    ledger_export_rows,
    payment_for,
    payment_history,
    payment_methods,
    receipt_for,
    statement_for,
    statements_of,
    usage_charged_through,
    usage_debits_by_model,
    usage_debits_by_month,
)
from billing.services import (
    BillingDetailsFields,
    PaymentError,
    StripeEventMalformed,
    auto_recharge_disable,
    auto_recharge_set,
    billing_details_update,
    payment_confirm,
    payment_method_save,
    payment_prepare,
    stripe_event_apply,
)
from core.exports import csv_download, download

logger = logging.getLogger(__name__)

LEDGER_PAGE_SIZE = 25
CSV_HEADER = [
    "time",
    "kind",
    "amount",
    "balance_after",
    "reason",
    "reference",
    "model",
    "actor",
    "idempotency_key",
]
assert len(CSV_HEADER) == len(LEDGER_EXPORT_FIELDS)


@org_view()
@require_GET
def finance_dashboard(request: OrgRequest) -> HttpResponse:
    """Balance, usage time, runway, payments and the paginated ledger (the organization's),
    and the usage-debit charts of ?project= (empty: All projects; one the person may not
    see: 404)."""
    org = request.organization
    ledger = Paginator(ledger_entries(org=org), LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    if request.htmx and request.htmx.target == "ledger":
        return render(request, "billing/dashboard.html#ledger", {"ledger": ledger})
    scope = project_scope_for(membership=request.membership, value=request.GET.get("project"))
    months = usage_debits_by_month(org=org, projects=scope.ids)
    models = usage_debits_by_model(org=org, projects=scope.ids)
    spend = {
        "scope": scope,
        "finance_url": reverse("billing:dashboard", args=[org.slug]),
        # Each chart's figures are also a table on the page (its text alternative).
        "month_debits": months,
        "model_debits": models,
        "month_figure": charts.usage_debits_by_month_figure(months),
        "model_figure": charts.usage_debits_by_model_figure(models),
    }
    if request.htmx and request.htmx.target == "finance-spend":
        response = render(request, "billing/dashboard.html#finance-spend", spend)
    else:
        context = {
            "nav": "finance",
            "overview": finance_overview(org=org),
            "charged_through": usage_charged_through(org=org),
            "payments": payment_history(org=org),
            "ledger": ledger,
            "can_manage": request.membership.can_manage,
            "can_pay": request.membership.can_pay,
            "is_owner": request.membership.role == Role.OWNER,
            **spend,
        }
        response = render(request, "billing/dashboard.html", context)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


@org_view()
@require_GET
def transactions_csv(request: OrgRequest) -> HttpResponse:
    """Every ledger entry as CSV, streamed; text cells escaped against formulas."""
    org = request.organization
    filename = f"{org.slug}-transactions-{timezone.localdate():%Y-%m-%d}.csv"
    return csv_download(CSV_HEADER, ledger_export_rows(org=org), filename=filename)


def _details_form_class():
    return CardForm if provider_get().collects_card_details else HostedCheckoutForm


def _flow_context(request: OrgRequest, **extra) -> dict:
    return {"nav": "finance", "test_cards": TEST_CARDS, "provider": provider_get(), **extra}


@org_view(roles=FINANCE_ROLES)
@require_GET
def add_credit(request: OrgRequest) -> HttpResponse:
    """Step 1: choose an amount."""
    form = AmountForm(initial={"amount": str(settings.BILLING_PRESET_AMOUNTS[1])})
    return render(request, "billing/add_credit_amount.html", _flow_context(request, form=form))


@org_view(roles=FINANCE_ROLES)
@require_http_methods(["GET", "POST"])
def add_credit_details(request: OrgRequest) -> HttpResponse:
    """Step 2: the card (sandbox) or a hand-over to the provider's page (Stripe)."""
    form_class = _details_form_class()
    if request.method == "GET":
        amount_form = AmountForm(request.GET)
        if not amount_form.is_valid():
            return render(
                request, "billing/add_credit_amount.html", _flow_context(request, form=amount_form)
            )
        # The key travels in the form: submitting it twice (double click, back and
        # resubmit) finds the same payment, so the card is charged once.
        form = form_class(
            initial={
                "amount_minor": amount_form.cleaned_data["amount_minor"],
                "idempotency_key": uuid.uuid4().hex,
            }
        )
    else:
        form = form_class(request.POST)
        if form.is_valid():
            try:
                payment = payment_prepare(
                    org=request.organization,
                    amount_minor=form.cleaned_data["amount_minor"],
                    idempotency_key=f"add-credit:{form.cleaned_data['idempotency_key']}",
                    actor=request.user,
                    card=form.card() if isinstance(form, CardForm) else None,
                )
            except CardError as exc:
                form.add_card_error(exc)
            except PaymentError as exc:
                form.add_error(None, str(exc))
            else:
                if payment.status == PaymentStatus.REQUIRES_CONFIRMATION:
                    return redirect(
                        "billing:add_credit_confirm", request.organization.slug, payment.pk
                    )
                return redirect("billing:payment", request.organization.slug, payment.pk)
    amount_minor = form["amount_minor"].value()
    return render(
        request,
        "billing/add_credit_details.html",
        _flow_context(request, form=form, amount=_dollars(amount_minor)),
    )


def _dollars(amount_minor) -> str:
    try:
        return dollars_display(int(amount_minor))
    except (TypeError, ValueError):
        return ""


@org_view(roles=FINANCE_ROLES)
@require_http_methods(["GET", "POST"])
def add_credit_confirm(request: OrgRequest, payment_id: int) -> HttpResponse:
    """Step 3: amount, credits and the balance after; confirming charges once."""
    org = request.organization
    payment = payment_for(org=org, payment_id=payment_id)
    if payment is None:
        raise Http404("No such payment")
    if payment.status != PaymentStatus.REQUIRES_CONFIRMATION:
        return redirect("billing:payment", org.slug, payment.pk)
    if request.method == "POST":
        result_url = request.build_absolute_uri(
            reverse("billing:payment", args=[org.slug, payment.pk])
        )
        payment = payment_confirm(
            org=org, payment_id=payment.pk, return_url=result_url, cancel_url=result_url
        )
        if payment.status == PaymentStatus.PENDING and payment.redirect_url:
            return redirect(payment.redirect_url)
        return redirect("billing:payment", org.slug, payment.pk)
    balance = credit_balance(org=org)
    return render(
        request,
        "billing/add_credit_confirm.html",
        _flow_context(
            request, payment=payment, balance=balance, balance_after=balance + payment.credits
        ),
    )


@org_view(roles=FINANCE_ROLES)
@require_GET
def add_credit_result(request: OrgRequest, payment_id: int) -> HttpResponse:
    """Step 4: the outcome, with the new balance or what went wrong."""
    payment = payment_for(org=request.organization, payment_id=payment_id)
    if payment is None:
        raise Http404("No such payment")
    if payment.status == PaymentStatus.REQUIRES_CONFIRMATION:
        return redirect("billing:add_credit_confirm", request.organization.slug, payment.pk)
    return render(
        request,
        "billing/add_credit_result.html",
        _flow_context(
            request, payment=payment, overview=finance_overview(org=request.organization)
        ),
    )


def _card_save(request: OrgRequest) -> SavedCardForm | None:
    """Save the posted card; None when saved, else the form with its errors."""
    card_form = SavedCardForm(request.POST)
    if not card_form.is_valid():
        return card_form
    try:
        payment_method_save(org=request.organization, card=card_form.card(), actor=request.user)
    except CardError as exc:
        card_form.add_card_error(exc)
    except PaymentError as exc:
        card_form.add_error(None, str(exc))
    else:
        messages.success(request, "Card saved for auto-recharge.")
        return None
    return card_form


def _rule_enable(request: OrgRequest, cards: list) -> AutoRechargeForm | None:
    """Turn on the posted rule with the saved card; None when on, else the form with its
    errors."""
    rule_form = AutoRechargeForm(request.POST)
    if not cards:
        rule_form.add_error(None, "Save a card first.")
        return rule_form
    if not rule_form.is_valid():
        return rule_form
    try:
        auto_recharge_set(
            org=request.organization,
            below=rule_form.cleaned_data["below"],
            amount_minor=rule_form.cleaned_data["amount_minor"],
            method=cards[0],
            actor=request.user,
        )
    except PaymentError as exc:
        rule_form.add_error(None, str(exc))
        return rule_form
    messages.success(request, "Auto-recharge is on.")
    return None


@org_view(manage=True)
@require_http_methods(["GET", "POST"])
def auto_recharge(request: OrgRequest) -> HttpResponse:
    """Owner only: save a card and set "below X credits, buy Y"."""
    if request.membership.role != Role.OWNER:
        raise PermissionDenied("Only the organization's owners can set auto-recharge")
    org = request.organization
    cards = list(payment_methods(org=org)[:1])
    card_form, rule_form = SavedCardForm(), AutoRechargeForm()
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "save_card":
            card_form = _card_save(request)
            if card_form is None:
                return redirect("billing:auto_recharge", org.slug)
        elif action == "enable":
            rule_form = _rule_enable(request, cards)
            if rule_form is None:
                return redirect("billing:auto_recharge", org.slug)
        elif action == "disable":
            auto_recharge_disable(org=org, actor=request.user)
            messages.success(request, "Auto-recharge is off.")
            return redirect("billing:auto_recharge", org.slug)
        else:
            return HttpResponseBadRequest("unknown action")
    overview = finance_overview(org=org)
    if overview.auto_recharge and not rule_form.is_bound:
        rule_form = AutoRechargeForm(
            initial={"below": overview.auto_recharge.below, "amount": overview.auto_recharge.amount}
        )
    return render(
        request,
        "billing/auto_recharge.html",
        _flow_context(
            request,
            overview=overview,
            card=cards[0] if cards else None,
            card_form=card_form,
            rule_form=rule_form,
        ),
    )


# Documents: statements, receipts and the billing details they print -----------------------


@org_view(roles=FINANCE_ROLES)
@require_GET
def statements(request: OrgRequest) -> HttpResponse:
    """Finance → Statements: one per closed month, newest first."""
    return render(
        request,
        "billing/documents/statements.html",
        {"nav": "finance", "statements": statements_of(org=request.organization)},
    )


def _statement(request: OrgRequest, statement_id: int):
    statement = statement_for(org=request.organization, statement_id=statement_id)
    if statement is None:
        raise Http404("No such statement")
    return statement


@org_view(roles=FINANCE_ROLES)
@require_GET
def statement(request: OrgRequest, statement_id: int) -> HttpResponse:
    """One statement as issued (it never changes)."""
    context = statement_context(_statement(request, statement_id))
    return render(request, "billing/documents/statement.html", {"nav": "finance", **context})


@org_view(roles=FINANCE_ROLES)
@require_GET
def statement_pdf_view(request: OrgRequest, statement_id: int) -> HttpResponse:
    statement = _statement(request, statement_id)
    return download(
        statement_pdf(statement),
        content_type="application/pdf",
        filename=f"{request.organization.slug}-statement-{statement.month:%Y-%m}.pdf",
    )


@org_view(roles=FINANCE_ROLES)
@require_GET
def statement_csv(request: OrgRequest, statement_id: int) -> HttpResponse:
    statement = _statement(request, statement_id)
    return csv_download(
        STATEMENT_CSV_HEADER,
        statement_csv_rows(statement),
        filename=f"{request.organization.slug}-statement-{statement.month:%Y-%m}.csv",
    )


def _receipt(request: OrgRequest, receipt_id: int):
    receipt = receipt_for(org=request.organization, receipt_id=receipt_id)
    if receipt is None:
        raise Http404("No such receipt")
    return receipt


@org_view(roles=FINANCE_ROLES)
@require_GET
def receipt(request: OrgRequest, receipt_id: int) -> HttpResponse:
    """A payment's or a refund's receipt, as issued."""
    context = receipt_context(_receipt(request, receipt_id))
    return render(request, "billing/documents/receipt.html", {"nav": "finance", **context})


@org_view(roles=FINANCE_ROLES)
@require_GET
def receipt_pdf_view(request: OrgRequest, receipt_id: int) -> HttpResponse:
    receipt = _receipt(request, receipt_id)
    return download(
        receipt_pdf(receipt),
        content_type="application/pdf",
        filename=f"{request.organization.slug}-receipt-{receipt.display_number}.pdf",
    )


@org_view(roles=FINANCE_ROLES)
@require_http_methods(["GET", "POST"])
def billing_details(request: OrgRequest) -> HttpResponse:
    """Settings → Billing details: owners and billing members edit; admins read."""
    org = request.organization
    can_edit = request.membership.role in BILLING_DETAILS_ROLES
    details = billing_details_of(org=org)
    initial = {
        name: getattr(details, name, "")
        for name in ("legal_name", "address", "country", "tax_id", "billing_email")
    }
    form = BillingDetailsForm(initial=initial)
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("Only owners and billing members change the billing details")
        form = BillingDetailsForm(request.POST)
        if form.is_valid():
            billing_details_update(
                org=org, fields=BillingDetailsFields(**form.cleaned_data), actor=request.user
            )
            messages.success(request, "Billing details saved: new documents carry them.")
            return redirect("billing_details:edit", org.slug)
    return render(
        request,
        "billing/billing_details.html",
        {"nav": "settings", "form": form, "can_edit": can_edit},
        status=400 if form.errors else 200,
    )


@csrf_exempt  # authenticated by Stripe's signature, not a session
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's events; only a correctly signed, recent event changes anything."""
    try:
        event = stripe_event_verify(
            payload=request.body,
            header=request.headers.get("Stripe-Signature", ""),
            secret=settings.STRIPE_WEBHOOK_SECRET,
        )
    except WebhookSignatureError as exc:
        logger.warning("billing.stripe.bad_signature", extra={"error": str(exc)})
        return HttpResponseBadRequest("invalid signature")
    try:
        payment = stripe_event_apply(event=event)
    except StripeEventMalformed as exc:
        logger.warning("billing.stripe.malformed_event", extra={"error": str(exc)})
        return HttpResponseBadRequest("malformed event")
    return JsonResponse({"received": True, "payment": payment.pk if payment else None})
