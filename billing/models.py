"""Credits: the price list, the append-only ledger, its cached balance, and payments."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from billing.money import dollars_for_minor_units

# Credits carry ten decimal places: enough for per-token prices (0.01 per million
# tokens is 1e-8 a token). billing.money.credits_round is the one place that rounds.
CREDIT_DIGITS = 24
CREDIT_PLACES = 10


def credit_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=CREDIT_DIGITS, decimal_places=CREDIT_PLACES, **kwargs)


class PriceModel(models.Model):
    """A model on the price list: credits per million input/output tokens and per worker-hour."""

    name = models.CharField(max_length=100, unique=True)
    input_price_per_million = credit_field()
    output_price_per_million = credit_field()
    worker_hour_rate = credit_field(default=Decimal("0"))
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "model"
        constraints = [
            models.CheckConstraint(
                condition=Q(input_price_per_million__gte=0)
                & Q(output_price_per_million__gte=0)
                & Q(worker_hour_rate__gte=0),
                name="price_model_prices_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class WorkerType(models.Model):
    """A kind of worker and its hourly credit rate; the default one sizes usage time."""

    name = models.CharField(max_length=100, unique=True)
    hourly_rate = credit_field()
    cores = models.PositiveIntegerField(default=1)
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_worker_type"
            ),
            models.CheckConstraint(condition=Q(hourly_rate__gt=0), name="worker_rate_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class Compute(models.TextChoices):
    MANAGED = "managed", "Managed compute"
    CONTROLLER = "controller", "Controller (BYOC)"


class CoreHourRate(models.Model):
    """Credits per core-hour for jobs: managed compute, and the lower platform rate on BYOC."""

    compute = models.CharField(max_length=20, choices=Compute.choices, unique=True)
    rate = credit_field()

    class Meta:
        ordering = ["compute"]
        constraints = [models.CheckConstraint(condition=Q(rate__gte=0), name="core_rate_not_neg")]

    def __str__(self) -> str:
        return f"{self.get_compute_display()}: {self.rate}/core-hour"


class PaymentMethod(models.Model):
    """A saved card, as the provider's token plus what may be shown (never the number)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="payment_methods"
    )
    provider = models.CharField(max_length=20)
    token = models.CharField(max_length=200)
    brand = models.CharField(max_length=20, blank=True, default="")
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.brand or 'Card'} •••• {self.last4} ({self.exp_month:02d}/{self.exp_year})"


class CreditAccount(models.Model):
    """The cached balance (always the ledger's sum, changed under a row lock) and its
    auto-recharge rule: when a debit takes the balance below auto_recharge_below, buy
    auto_recharge_amount_minor with auto_recharge_method. The rule lives on this row
    because ledger_post already holds it locked: checking it costs no query."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="credit_account"
    )
    balance = credit_field(default=Decimal("0"))
    updated_at = models.DateTimeField(default=timezone.now)
    auto_recharge_below = credit_field(null=True, blank=True)
    auto_recharge_amount_minor = models.PositiveBigIntegerField(null=True, blank=True)
    auto_recharge_method = models.ForeignKey(
        PaymentMethod, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(auto_recharge_below__isnull=True)
                    | (
                        Q(auto_recharge_below__gte=0)
                        & Q(auto_recharge_amount_minor__gt=0)
                        & Q(auto_recharge_method__isnull=False)
                    )
                ),
                name="auto_recharge_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization}: {self.balance}"


class EntryKind(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    GRANT = "grant", "Grant"
    USAGE = "usage", "Usage debit"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"


class LedgerEntry(models.Model):
    """One append-only movement of credits. Positive adds, negative takes away."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    kind = models.CharField(max_length=20, choices=EntryKind.choices)
    amount = credit_field()
    balance_after = credit_field()
    reason = models.CharField(max_length=500)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    idempotency_key = models.CharField(max_length=200)
    # What the entry pays for or charges: "payment:12", "usage-batch:7", "job:q-1" ...
    reference = models.CharField(max_length=200, blank=True, default="")
    # The price-list model a usage debit charged, when it charged one (usage debits by model).
    model_name = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        permissions = [("post_adjustment", "Can post a credit adjustment")]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"], name="ledger_idempotency_key_per_org"
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
            models.CheckConstraint(
                condition=(Q(kind__in=["purchase", "grant"]) & Q(amount__gt=0))
                | (Q(kind="usage") & Q(amount__lt=0))
                | Q(kind__in=["refund", "adjustment"]),
                name="ledger_sign_matches_kind",
            ),
        ]
        indexes = [models.Index(fields=["organization", "-created_at"], name="ledger_org_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} ({self.organization})"


class PaymentStatus(models.TextChoices):
    # Prepared by the Add Credit flow, waiting for the customer's confirmation.
    REQUIRES_CONFIRMATION = "requires_confirmation", "Awaiting confirmation"
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    DECLINED = "declined", "Declined"
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"


class PaymentSource(models.TextChoices):
    MANUAL = "manual", "Add Credit"
    AUTO_RECHARGE = "auto_recharge", "Auto-recharge"


class Payment(models.Model):
    """A card payment for credits. Amounts are integer minor units plus a currency."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="payments"
    )
    amount_minor = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3, default="USD")
    credits = credit_field()
    status = models.CharField(
        max_length=30, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    provider = models.CharField(max_length=20)
    provider_reference = models.CharField(max_length=200, blank=True, default="")
    failure_message = models.CharField(max_length=300, blank=True, default="")
    card_last4 = models.CharField(max_length=4, blank=True, default="")
    card_brand = models.CharField(max_length=20, blank=True, default="")
    # The provider's token for the card to charge (sandbox), never the card number.
    method_token = models.CharField(max_length=200, blank=True, default="")
    # Where a hosted-checkout provider (Stripe) takes the customer to pay.
    redirect_url = models.URLField(max_length=1000, blank=True, default="")
    # The provider's id of the money movement itself (Stripe: the PaymentIntent), for refunds.
    provider_charge_id = models.CharField(max_length=200, blank=True, default="")
    source = models.CharField(
        max_length=20, choices=PaymentSource.choices, default=PaymentSource.MANUAL
    )
    idempotency_key = models.CharField(max_length=200)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("refund_payment", "Can refund a payment")]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"], name="payment_idempotency_key_per_org"
            ),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="payment_amount_pos"),
        ]
        indexes = [
            models.Index(fields=["provider", "provider_reference"], name="payment_provider_ref"),
            models.Index(
                fields=["organization", "status", "-completed_at"], name="payment_org_status"
            ),
        ]

    def __str__(self) -> str:
        return f"{dollars_for_minor_units(self.amount_minor):.2f} {self.currency} ({self.status})"

    @property
    def amount(self) -> Decimal:
        """The amount in major units (dollars), for display."""
        return dollars_for_minor_units(self.amount_minor)


class ReconciliationKind(models.TextChoices):
    BALANCE = "balance", "Cached balance against the ledger sum"
    ROLLUP = "rollup", "Daily rollup against the raw records"


class ReconciliationIssue(models.Model):
    """A mismatch the reconciliation found (billing.services.reconciliation): what was
    expected, what was found. Written once per finding and never used to fix anything;
    an operator investigates."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="reconciliation_issues"
    )
    kind = models.CharField(max_length=20, choices=ReconciliationKind.choices)
    # Rollup issues: the organization's local day and the rollup table ("job", "query"...).
    day = models.DateField(null=True, blank=True)
    rollup = models.CharField(max_length=20, blank=True, default="")
    message = models.CharField(max_length=500)
    # What the source of truth says, what the derived figure holds (JSON-safe strings).
    expected = models.JSONField(default=dict)
    found = models.JSONField(default=dict)
    detected_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-detected_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-detected_at"], name="reconcile_issue_org_time")
        ]

    def __str__(self) -> str:
        return self.message


class BillingDetails(models.Model):
    """The buyer's details printed on receipts and statements (copied into each document
    when it is issued, so a later change applies to later documents only)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="billing_details"
    )
    legal_name = models.CharField(max_length=200, blank=True, default="")
    address = models.TextField(max_length=500, blank=True, default="")
    country = models.CharField(max_length=100, blank=True, default="")
    tax_id = models.CharField(max_length=50, blank=True, default="")
    billing_email = models.EmailField(blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "billing details"

    def __str__(self) -> str:
        return self.legal_name or str(self.organization)


class ReceiptKind(models.TextChoices):
    PAYMENT = "payment", "Payment"
    REFUND = "refund", "Refund"


class Receipt(models.Model):
    """A receipt for a successful payment or a refund. Numbers run 1, 2, 3... per
    organization, are taken under the credit account's row lock, and are never reused
    (receipts are never deleted). Seller and buyer are copied as they were at issue."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="receipts"
    )
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=ReceiptKind.choices)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="receipts")
    amount_minor = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    credits = credit_field()
    card_brand = models.CharField(max_length=20, blank=True, default="")
    card_last4 = models.CharField(max_length=4, blank=True, default="")
    seller = models.JSONField(default=dict)
    buyer = models.JSONField(default=dict)
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "number"], name="receipt_number_per_org"
            ),
            models.UniqueConstraint(
                fields=["organization", "payment", "kind"], name="one_receipt_per_payment_kind"
            ),
            models.CheckConstraint(condition=Q(number__gt=0), name="receipt_number_positive"),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="receipt_amount_positive"),
        ]

    def __str__(self) -> str:
        return self.display_number

    @property
    def display_number(self) -> str:
        return f"R-{self.number:06d}"

    @property
    def amount(self) -> Decimal:
        return dollars_for_minor_units(self.amount_minor)


class Statement(models.Model):
    """A closed calendar month's statement (in the organization's time zone), issued once
    and never changed: its opening is the previous statement's closing, its closing the
    ledger's sum at the month's end as of issue. `last_entry_id` is the newest ledger
    entry it saw: an entry dated in a stated month but posted later (a restatement)
    appears on the next statement as its own line."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="statements"
    )
    month = models.DateField()  # the month's first day, local to the organization
    time_zone = models.CharField(max_length=64)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    opening_balance = credit_field()
    closing_balance = credit_field()
    last_entry_id = models.BigIntegerField(default=0)
    # Lines, sums and the usage breakdowns as issued (decimal strings): see
    # billing.services.statements.
    content = models.JSONField(default=dict)
    seller = models.JSONField(default=dict)
    buyer = models.JSONField(default=dict)
    issued_at = models.DateTimeField(default=timezone.now)
    # When its email went out (the task sends it once); not part of the statement.
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-month"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "month"], name="statement_per_month"),
            models.CheckConstraint(
                condition=Q(period_end__gt=models.F("period_start")),
                name="statement_period_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization} {self.month:%B %Y}"

    @property
    def display_number(self) -> str:
        return f"S-{self.month:%Y-%m}"
