"""Operators' billing admin: the price list (editable), the ledger and payments (read-only),
a credit adjustment with a required reason, and refunds."""

import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse

from billing.forms import AdjustmentForm
from billing.models import (
    CoreHourRate,
    CreditAccount,
    LedgerEntry,
    Payment,
    PaymentMethod,
    PriceModel,
    ReconciliationIssue,
    WorkerType,
)
from billing.money import credits_exact, credits_text, dollars_display
from billing.services import LedgerError, PaymentError, ledger_adjust, payment_refund
from core.admin import ReadOnlyAdmin


@admin.register(PriceModel)
class PriceModelAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "input_price_per_million",
        "output_price_per_million",
        "worker_hour_rate",
        "is_active",
        "updated_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["name"]


@admin.register(WorkerType)
class WorkerTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "hourly_rate", "cores", "is_default"]


@admin.register(CoreHourRate)
class CoreHourRateAdmin(admin.ModelAdmin):
    list_display = ["compute", "rate"]


def credits_column(field: str, label: str):
    """A list column showing a credit field exactly and grouped (1,234.50, not
    1234.5000000000), sortable by the field."""

    @admin.display(description=label, ordering=field)
    def column(obj) -> str:
        value = getattr(obj, field)
        return "—" if value is None else credits_exact(value)

    return column


def dollars_column(field: str, label: str):
    """A list column showing an amount in cents as dollars ($1,234.56)."""

    @admin.display(description=label, ordering=field)
    def column(obj) -> str:
        value = getattr(obj, field)
        return "—" if value is None else dollars_display(value)

    return column


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "organization",
        "kind",
        credits_column("amount", "amount"),
        credits_column("balance_after", "balance after"),
        "reason",
        "reference",
        "actor",
    ]
    list_filter = ["kind", "organization"]
    search_fields = ["organization__name", "organization__slug", "reason", "reference"]
    list_select_related = ["organization", "actor"]
    date_hierarchy = "created_at"
    change_list_template = "admin/billing/ledgerentry/change_list.html"

    def get_urls(self):
        custom = [
            path(
                "adjust/",
                self.admin_site.admin_view(self.adjust_view),
                name="billing_ledgerentry_adjust",
            )
        ]
        return custom + super().get_urls()

    def adjust_view(self, request: HttpRequest) -> HttpResponse:
        """Post an adjustment (either sign) with a required reason, once per form."""
        if not request.user.has_perm("billing.post_adjustment"):
            raise PermissionDenied
        if request.method == "POST":
            form = AdjustmentForm(request.POST)
            if form.is_valid():
                org = form.cleaned_data["organization"]
                try:
                    posted = ledger_adjust(
                        org=org,
                        amount=form.cleaned_data["amount"],
                        reason=form.cleaned_data["reason"],
                        actor=request.user,
                        idempotency_key=f"adjustment:{form.cleaned_data['idempotency_key']}",
                    )
                except LedgerError as exc:
                    form.add_error(None, str(exc))
                else:
                    self.message_user(
                        request,
                        f"Posted {credits_text(posted.entry.amount, exact=True)} to {org}; "
                        f"balance now {credits_text(posted.entry.balance_after, exact=True)}.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:billing_ledgerentry_changelist"))
        else:
            form = AdjustmentForm(
                initial={
                    "organization": request.GET.get("organization"),
                    "idempotency_key": uuid.uuid4().hex,
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Post a credit adjustment",
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/billing/adjust.html", context)


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    list_display = [
        "organization",
        credits_column("balance", "balance"),
        credits_column("auto_recharge_below", "auto-recharge below"),
        dollars_column("auto_recharge_amount_minor", "auto-recharge amount"),
        "updated_at",
    ]
    search_fields = ["organization__name", "organization__slug"]
    list_select_related = ["organization"]
    actions = ["post_adjustment"]

    @admin.action(description="Post a credit adjustment for the selected organization")
    def post_adjustment(self, request: HttpRequest, queryset):
        account = queryset.first()
        url = reverse("admin:billing_ledgerentry_adjust")
        return HttpResponseRedirect(f"{url}?organization={account.organization_id}")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "organization",
        dollars_column("amount_minor", "amount"),
        "currency",
        credits_column("credits", "credits"),
        "status",
        "source",
        "provider",
        "provider_reference",
        "card_last4",
    ]
    list_filter = ["status", "source", "provider"]
    search_fields = ["organization__name", "provider_reference", "idempotency_key"]
    list_select_related = ["organization"]
    exclude = ["method_token"]
    actions = ["refund"]

    @admin.action(description="Refund selected payments (takes their credits back)")
    def refund(self, request: HttpRequest, queryset):
        if not request.user.has_perm("billing.refund_payment"):
            raise PermissionDenied
        for payment in queryset:
            try:
                payment_refund(payment_id=payment.pk, actor=request.user)
            except (PaymentError, LedgerError) as exc:
                self.message_user(request, f"Payment {payment.pk}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"Payment {payment.pk} refunded.", messages.SUCCESS)


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin):
    list_display = ["organization", "provider", "brand", "last4", "exp_month", "exp_year"]
    exclude = ["token"]


@admin.register(ReconciliationIssue)
class ReconciliationIssueAdmin(ReadOnlyAdmin):
    """What `manage.py reconcile` and the nightly task found; investigate, then fix by
    recomputing the rollup day or posting an adjustment, never by editing a row."""

    list_display = ["detected_at", "organization", "kind", "day", "rollup", "message"]
    list_filter = ["kind", "rollup"]
    search_fields = ["organization__name", "organization__slug", "message"]
    list_select_related = ["organization"]
    date_hierarchy = "detected_at"
