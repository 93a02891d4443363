"""Spend controls: budgets, reservations, the holds and spend per day they add up to,
paused keys, over-cap flags and rate-limit refusals (docs/spend-controls.md). Tables keep
their `usage_` names (they were created by the usage app; see docs/architecture.md)."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import APIKey, Organization, Project
from billing.models import PriceModel, credit_field
from usage.models import CLIENT_ID_MAX, IngestBatch


class RateLimitRefusal(models.Model):
    """Requests refused with 429, counted per API key and minute: the panel's "refused"
    figure and the rate-limit alert read these, since the limiter's own counters expire."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "usage_ratelimitrefusal"
        ordering = ["-minute"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "api_key", "minute"], name="refusal_per_key_minute"
            ),
        ]
        indexes = [models.Index(fields=["organization", "minute"], name="refusal_org_time")]

    def __str__(self) -> str:
        return f"{self.count} refused at {self.minute:%Y-%m-%d %H:%M}"


# --- Spend controls: budgets, reservations, pauses -------------------------


class BudgetScope(models.TextChoices):
    ORGANIZATION = "organization", "Organization"
    API_KEY = "api_key", "API key"
    MEMBER = "member", "Member"
    PROJECT = "project", "Project"


class BudgetPeriod(models.TextChoices):
    DAY = "day", "Day"
    WEEK = "week", "Week"
    MONTH = "month", "Calendar month"


def budget_thresholds_default() -> list[int]:
    return [50, 80, 100]


class Budget(models.Model):
    """A credit budget for a day, week or calendar month (organization's zone): the soft
    level alerts, the optional hard level refuses authorizations."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=20, choices=BudgetScope.choices)
    api_key = models.ForeignKey(
        APIKey, null=True, blank=True, on_delete=models.CASCADE, related_name="budgets"
    )
    member = models.CharField(max_length=254, blank=True, default="")
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="budgets"
    )
    period = models.CharField(max_length=10, choices=BudgetPeriod.choices)
    soft_limit = credit_field()
    hard_limit = credit_field(null=True, blank=True)
    # Percentages of the soft level that alert once per crossing (alert rules).
    thresholds = models.JSONField(default=budget_thresholds_default)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "usage_budget"
        ordering = ["scope", "member", "api_key_id", "project_id", "period", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(soft_limit__gte=0), name="budget_soft_nonneg"),
            models.CheckConstraint(
                condition=Q(hard_limit__isnull=True) | Q(hard_limit__gte=0),
                name="budget_hard_nonneg",
            ),
            models.CheckConstraint(
                condition=(
                    Q(scope="organization", api_key__isnull=True, member="", project__isnull=True)
                    | Q(scope="api_key", api_key__isnull=False, member="", project__isnull=True)
                    | (
                        Q(scope="member", api_key__isnull=True, project__isnull=True)
                        & ~Q(member="")
                    )
                    | Q(scope="project", api_key__isnull=True, member="", project__isnull=False)
                ),
                name="budget_scope_subject_project",
            ),
            models.UniqueConstraint(
                "organization",
                "scope",
                "member",
                "period",
                models.functions.Coalesce("api_key", 0),
                models.functions.Coalesce("project", 0),
                name="budget_one_per_subject_period_project",
            ),
        ]

    def __str__(self) -> str:
        subject = "" if self.scope == BudgetScope.ORGANIZATION else f" {self.subject_label}"
        return f"{self.get_scope_display()}{subject}, {self.get_period_display().lower()}"

    @property
    def subject_label(self) -> str:
        if self.scope == BudgetScope.API_KEY:
            return self.api_key.name if self.api_key else ""
        if self.scope == BudgetScope.PROJECT:
            return self.project.name if self.project else ""
        return self.member or "organization"

    @property
    def subject(self) -> str:
        """The spend counters' subject: '' (organization), the key's id, the member, or
        the project's id."""
        if self.scope == BudgetScope.API_KEY:
            return str(self.api_key_id)
        if self.scope == BudgetScope.PROJECT:
            return str(self.project_id)
        return self.member


class SpendDay(models.Model):
    """Credits (and tokens) charged per organization, local day and subject: the
    organization ('o', ''), an API key ('k', id), a member ('m', email) or a project
    ('p', id). Written in the
    ingestion transaction; budgets sum the days of their period."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    dimension = models.CharField(max_length=1)
    subject = models.CharField(max_length=254, blank=True, default="")
    day = models.DateField()
    credits = credit_field(default=Decimal("0"))
    tokens = models.BigIntegerField(default=0)

    class Meta:
        db_table = "usage_spendday"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "dimension", "subject", "day"], name="spend_day_subject"
            )
        ]

    def __str__(self) -> str:
        return f"{self.dimension}:{self.subject} {self.day}"


class SpendHold(models.Model):
    """What live reservations hold per subject (credits and tokens). The organization's
    own row ('o', '') is also the lock that serializes authorizations and settlements."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    dimension = models.CharField(max_length=1)
    subject = models.CharField(max_length=254, blank=True, default="")
    credits = credit_field(default=Decimal("0"))
    tokens = models.BigIntegerField(default=0)

    class Meta:
        db_table = "usage_spendhold"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "dimension", "subject"], name="spend_hold_subject"
            ),
            models.CheckConstraint(condition=Q(credits__gte=0), name="spend_hold_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.dimension}:{self.subject}"


class ReservationStatus(models.TextChoices):
    HELD = "held", "Held"
    SETTLED = "settled", "Settled"
    EXPIRED = "expired", "Expired"


class Reservation(models.Model):
    """A worst-case cost held by `authorize` until a usage record settles it or it expires."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    public_id = models.CharField(max_length=40)
    api_key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="+")
    # The key's project when authorized (docs/projects.md): its budgets hold this too.
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    member = models.CharField(max_length=254, blank=True, default="")
    endpoint = models.CharField(max_length=200, blank=True, default="")
    model = models.ForeignKey(PriceModel, on_delete=models.PROTECT, related_name="+")
    credits = credit_field()
    tokens = models.BigIntegerField()
    status = models.CharField(
        max_length=10, choices=ReservationStatus.choices, default=ReservationStatus.HELD
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    settled_credits = credit_field(null=True, blank=True)
    record_id = models.CharField(max_length=CLIENT_ID_MAX, blank=True, default="")

    class Meta:
        db_table = "usage_reservation"
        indexes = [
            models.Index(
                fields=["organization", "expires_at"],
                condition=Q(status="held"),
                name="reservation_held_expiry",
            )
        ]
        constraints = [
            # The id the gateway carries on the usage record, unique in its organization.
            models.UniqueConstraint(
                fields=["organization", "public_id"], name="reservation_public_id_unique"
            ),
            models.CheckConstraint(condition=Q(credits__gte=0), name="reservation_nonneg"),
        ]

    def __str__(self) -> str:
        return self.public_id


class KeyPause(models.Model):
    """A paused API key: `authorize` answers 402 key_paused; nothing else changes."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="+")
    paused_at = models.DateTimeField(default=timezone.now)
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "usage_keypause"
        constraints = [
            # A key is paused once; the organization leads the key (shardable by it).
            models.UniqueConstraint(fields=["organization", "api_key"], name="key_pause_once"),
        ]

    def __str__(self) -> str:
        return f"pause of key {self.api_key_id}"


class OverCap(models.Model):
    """Usage stored past a hard budget or the free allocation without a reservation (or
    past its reservation): shown on key and budget cards, counted by reconciliation."""

    class Reason(models.TextChoices):
        BUDGET = "budget", "Over a hard budget"
        ALLOCATION = "allocation", "Past the free allocation"
        RESERVATION = "reservation", "Past its reservation"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=12, choices=Reason.choices)
    budget = models.ForeignKey(Budget, null=True, blank=True, on_delete=models.SET_NULL)
    api_key = models.ForeignKey(
        APIKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    member = models.CharField(max_length=254, blank=True, default="")
    batch = models.ForeignKey(IngestBatch, null=True, on_delete=models.SET_NULL, related_name="+")
    records = models.IntegerField(default=0)
    credits = credit_field(default=Decimal("0"))  # charged beyond the level
    uncharged_credits = credit_field(default=Decimal("0"))  # not charged (free allocation)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "usage_overcap"
        indexes = [models.Index(fields=["organization", "at"], name="overcap_org_at")]

    def __str__(self) -> str:
        return f"{self.reason} {self.at:%Y-%m-%d}"
