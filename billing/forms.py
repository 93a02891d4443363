"""Forms of the Add Credit flow, auto-recharge, and the admin's adjustment."""

from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils import timezone

from accounts.forms import TypedDecimalField
from accounts.models import Organization
from billing.cards import (
    CardDetails,
    CardError,
    card_brand,
    card_number_normalize,
    cvc_valid,
    expiry_parse,
    expiry_valid,
    luhn_valid,
)
from billing.money import dollars_display, minor_units_for_dollars
from core.text import validate_visible_text

CUSTOM = "custom"


def _bounds_text() -> str:
    low, high = settings.BILLING_MIN_PAYMENT_MINOR, settings.BILLING_MAX_PAYMENT_MINOR
    return f"{dollars_display(low)} to {dollars_display(high, places=0)}"


def amount_minor_check(amount_minor: int) -> int:
    if not (
        settings.BILLING_MIN_PAYMENT_MINOR <= amount_minor <= settings.BILLING_MAX_PAYMENT_MINOR
    ):
        raise forms.ValidationError(f"Choose an amount from {_bounds_text()}.")
    return amount_minor


class AmountForm(forms.Form):
    """Step 1: a preset amount or a custom one, in dollars."""

    amount = forms.ChoiceField(widget=forms.RadioSelect, required=False)
    custom_amount = TypedDecimalField(
        required=False,
        min_value=Decimal("0.01"),
        max_digits=10,
        decimal_places=2,
        label="Custom amount (USD)",
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        presets = [(str(p), f"${p:,}") for p in settings.BILLING_PRESET_AMOUNTS]
        self.fields["amount"].choices = [*presets, (CUSTOM, "Other amount")]
        hint = f"From {_bounds_text()}. Leave it empty to use the amount ticked above."
        self.fields["custom_amount"].help_text = hint

    def clean(self) -> dict:
        data = super().clean()
        choice, custom = data.get("amount"), data.get("custom_amount")
        if choice in (None, "", CUSTOM) and custom is None:
            if "custom_amount" not in self.errors:
                raise forms.ValidationError("Choose an amount or enter one.")
            return data
        # A typed amount wins over the ticked preset: without JavaScript the default
        # preset stays ticked while the customer types, and what they typed is what they mean.
        dollars = custom if custom is not None else Decimal(choice)
        minor = minor_units_for_dollars(dollars)
        data["amount_minor"] = amount_minor_check(minor)
        return data


class CardForm(forms.Form):
    """Step 2 (sandbox): the card, checked as a processor would (Luhn, expiry, CVC)."""

    amount_minor = forms.IntegerField(widget=forms.HiddenInput)
    idempotency_key = forms.CharField(max_length=100, widget=forms.HiddenInput)
    name = forms.CharField(
        max_length=100,
        required=False,
        label="Name on card",
        widget=forms.TextInput(attrs={"autocomplete": "cc-name"}),
    )
    number = forms.CharField(
        max_length=30,
        label="Card number",
        widget=forms.TextInput(
            attrs={"autocomplete": "cc-number", "inputmode": "numeric", "spellcheck": "false"}
        ),
    )
    expiry = forms.CharField(
        max_length=7,
        label="Expiry (MM/YY)",
        widget=forms.TextInput(attrs={"autocomplete": "cc-exp", "placeholder": "MM/YY"}),
    )
    cvc = forms.CharField(
        max_length=4,
        label="CVC",
        widget=forms.TextInput(attrs={"autocomplete": "cc-csc", "inputmode": "numeric"}),
    )

    def clean_amount_minor(self) -> int:
        return amount_minor_check(self.cleaned_data["amount_minor"])

    def clean_number(self) -> str:
        number = card_number_normalize(self.cleaned_data["number"])
        if not luhn_valid(number):
            raise forms.ValidationError("This card number is not valid: check it for typos.")
        return number

    def clean_expiry(self) -> tuple[int, int]:
        try:
            month, year = expiry_parse(self.cleaned_data["expiry"])
        except CardError as exc:
            raise forms.ValidationError(exc.message) from exc
        if not expiry_valid(month=month, year=year, today=timezone.localdate()):
            raise forms.ValidationError("This card has expired.")
        return month, year

    def clean(self) -> dict:
        data = super().clean()
        number, cvc = data.get("number"), data.get("cvc", "").strip()
        if number and not cvc_valid(cvc=cvc, number=number):
            digits = 4 if card_brand(number) == "Amex" else 3
            self.add_error("cvc", f"The security code (CVC) is {digits} digits.")
        return data

    def card(self) -> CardDetails:
        month, year = self.cleaned_data["expiry"]
        return CardDetails(
            number=self.cleaned_data["number"],
            exp_month=month,
            exp_year=year,
            cvc=self.cleaned_data["cvc"].strip(),
            name=self.cleaned_data.get("name", ""),
        )

    def add_card_error(self, error: CardError) -> None:
        self.add_error(error.field if error.field in self.fields else None, error.message)


class HostedCheckoutForm(forms.Form):
    """Step 2 (Stripe): nothing to type here; the card is entered on Stripe's page."""

    amount_minor = forms.IntegerField(widget=forms.HiddenInput)
    idempotency_key = forms.CharField(max_length=100, widget=forms.HiddenInput)

    def clean_amount_minor(self) -> int:
        return amount_minor_check(self.cleaned_data["amount_minor"])


class SavedCardForm(CardForm):
    """A card to save for auto-recharge (no amount or key: it is not a payment)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["amount_minor"]
        del self.fields["idempotency_key"]


class AutoRechargeForm(forms.Form):
    """When the balance falls below `below` credits, buy `amount` dollars of credits."""

    below = TypedDecimalField(
        min_value=Decimal("0"),
        max_digits=14,
        decimal_places=2,
        label="When the balance falls below (credits)",
    )
    amount = TypedDecimalField(
        min_value=Decimal("0.01"), max_digits=10, decimal_places=2, label="Buy (USD)"
    )

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        minor = minor_units_for_dollars(amount)
        amount_minor_check(minor)
        self.cleaned_data["amount_minor"] = minor
        return amount


class AdjustmentForm(forms.Form):
    """Admin: post a credit adjustment with a required reason."""

    organization = forms.ModelChoiceField(queryset=Organization.objects.all())
    amount = TypedDecimalField(
        max_digits=20,
        decimal_places=10,
        help_text="Credits: positive adds, negative takes away.",
    )
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text="Required."
    )
    idempotency_key = forms.CharField(max_length=100, widget=forms.HiddenInput)

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("An adjustment cannot be zero.")
        return amount

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why: the reason is recorded in the ledger.")
        return reason


class BillingDetailsForm(forms.Form):
    legal_name = forms.CharField(
        max_length=200, required=False, label="Legal name",
        help_text="As registered; the organization's name when empty.",
        validators=[validate_visible_text],
    )  # fmt: skip
    address = forms.CharField(
        max_length=500, required=False, label="Address", widget=forms.Textarea(attrs={"rows": 3})
    )
    country = forms.CharField(
        max_length=100, required=False, label="Country", validators=[validate_visible_text]
    )
    tax_id = forms.CharField(
        max_length=50, required=False, label="Tax ID", help_text="VAT, GST or EIN number.",
        validators=[validate_visible_text],
    )  # fmt: skip
    billing_email = forms.EmailField(
        required=False, label="Billing email", help_text="Where finance mail should go."
    )
