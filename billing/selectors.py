"""Reads for billing."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import ROUND_FLOOR, Decimal

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from accounts.models import Organization
from billing.models import (
    BillingDetails,
    CreditAccount,
    EntryKind,
    LedgerEntry,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Receipt,
    Statement,
    WorkerType,
)
from billing.money import credits_round, dollars_for_minor_units
from billing.usage_sources import credits_by_model, credits_by_month
from core.calendar import month_starts, org_zone


@dataclass(frozen=True)
class AccountSummary:
    """What the session chip and the balance cards show."""

    credit_balance: Decimal
    last_payment_at: datetime | None


def credit_balance(*, org: Organization) -> Decimal:
    """The cached balance (equal to the ledger's sum; zero before the first entry)."""
    balance = (
        CreditAccount.objects.filter(organization=org).values_list("balance", flat=True).first()
    )
    return balance if balance is not None else Decimal("0")


def ledger_sum(*, org: Organization) -> Decimal:
    """The balance recomputed from the ledger itself (for reconciliation and tests).

    Rounded to the ledger's scale: SQLite sums decimals in floating point (off by ~1e-15);
    PostgreSQL's sum is exact and rounding leaves it unchanged."""
    total = LedgerEntry.objects.filter(organization=org).aggregate(total=Sum("amount"))["total"]
    return credits_round(Decimal(total)) if total is not None else Decimal("0")


def last_payment_at(*, org: Organization) -> datetime | None:
    """When the organization's most recent successful payment completed."""
    return (
        Payment.objects.filter(organization=org, status=PaymentStatus.SUCCEEDED)
        .order_by("-completed_at")
        .values_list("completed_at", flat=True)
        .first()
    )


def account_summary(*, org: Organization) -> AccountSummary:
    """The organization's balance and last payment date."""
    return AccountSummary(
        credit_balance=credit_balance(org=org), last_payment_at=last_payment_at(org=org)
    )


# ------------------------------------------------------------------ finance overview


@dataclass(frozen=True)
class RemainingUsageTime:
    """Credits turned into worker time at the default worker type's hourly rate.

    Total runtime across all workers: 4 days means 1 day for 4 workers in parallel.
    """

    worker_type: str
    hourly_rate: Decimal
    total_hours: int  # whole hours, rounded down
    days: int
    hours: int
    cores: int = 1  # the worker type's: its hours times its cores are the chip's core-hours
    core_hours: Decimal = Decimal(0)  # the balance in core-hours, as the session chip shows


@dataclass(frozen=True)
class Runway:
    """When the credits run out at the trailing 7-day burn rate."""

    daily_burn: Decimal  # credits a day, averaged over the last 7 days; 0: no recent usage
    runs_out_on: date | None  # None when there is no recent usage or it is years away
    exhausted: bool = False  # the balance is already at or below zero
    beyond_horizon: bool = False  # more than RUNWAY_HORIZON_DAYS away

    @property
    def no_recent_usage(self) -> bool:
        return self.daily_burn <= 0


@dataclass(frozen=True)
class AutoRechargeRule:
    below: Decimal
    amount_minor: int
    card: str

    @property
    def amount(self) -> Decimal:
        return dollars_for_minor_units(self.amount_minor)


@dataclass(frozen=True)
class FinanceOverview:
    credit_balance: Decimal
    last_payment_at: datetime | None
    remaining_usage_time: RemainingUsageTime | None
    runway: Runway
    auto_recharge: AutoRechargeRule | None


RUNWAY_WINDOW_DAYS = 7
RUNWAY_HORIZON_DAYS = 3650


def remaining_usage_time_for(
    *, balance: Decimal, worker_type: WorkerType | None
) -> RemainingUsageTime | None:
    """Balance ÷ the worker type's hourly rate, in whole days and hours (pure)."""
    if worker_type is None or worker_type.hourly_rate <= 0:
        return None
    total_hours = max(0, int((balance / worker_type.hourly_rate).to_integral_value(ROUND_FLOOR)))
    return RemainingUsageTime(
        worker_type=worker_type.name,
        hourly_rate=worker_type.hourly_rate,
        total_hours=total_hours,
        days=total_hours // 24,
        hours=total_hours % 24,
        cores=worker_type.cores,
        core_hours=max(Decimal(0), balance * worker_type.cores / worker_type.hourly_rate),
    )


def runway_for(*, balance: Decimal, burn_last_7_days: Decimal, now: datetime, tz: tzinfo) -> Runway:
    """The run-out date at the trailing 7-day burn (pure)."""
    daily = burn_last_7_days / RUNWAY_WINDOW_DAYS
    if daily <= 0:
        return Runway(daily_burn=Decimal("0"), runs_out_on=None)
    if balance <= 0:
        return Runway(daily_burn=daily, runs_out_on=now.astimezone(tz).date(), exhausted=True)
    days_left = balance / daily
    if days_left > RUNWAY_HORIZON_DAYS:
        return Runway(daily_burn=daily, runs_out_on=None, beyond_horizon=True)
    runs_out_at = now + timedelta(seconds=float(days_left * 86400))
    return Runway(daily_burn=daily, runs_out_on=runs_out_at.astimezone(tz).date())


def default_worker_type() -> WorkerType | None:
    return WorkerType.objects.filter(is_default=True).first()


def usage_burn(*, org: Organization, start: datetime, end: datetime) -> Decimal:
    """Credits the organization's usage debits took in [start, end)."""
    total = LedgerEntry.objects.filter(
        organization=org, kind=EntryKind.USAGE, created_at__gte=start, created_at__lt=end
    ).aggregate(total=Sum("amount"))["total"]
    return -total if total is not None else Decimal("0")


def finance_overview(*, org: Organization, now: datetime | None = None) -> FinanceOverview:
    """Balance, last payment, estimated usage time, runway and the auto-recharge rule."""
    now = now or timezone.now()
    account = (
        CreditAccount.objects.select_related("auto_recharge_method")
        .filter(organization=org)
        .first()
    )
    balance = account.balance if account else Decimal("0")
    rule = None
    if account and account.auto_recharge_below is not None and account.auto_recharge_amount_minor:
        method = account.auto_recharge_method
        rule = AutoRechargeRule(
            below=account.auto_recharge_below,
            amount_minor=account.auto_recharge_amount_minor,
            card=str(method) if method else "no card",
        )
    burn = usage_burn(org=org, start=now - timedelta(days=RUNWAY_WINDOW_DAYS), end=now)
    return FinanceOverview(
        credit_balance=balance,
        last_payment_at=last_payment_at(org=org),
        remaining_usage_time=remaining_usage_time_for(
            balance=balance, worker_type=default_worker_type()
        ),
        runway=runway_for(balance=balance, burn_last_7_days=burn, now=now, tz=org_zone(org)),
        auto_recharge=rule,
    )


# ------------------------------------------------------- history and usage debits


def payment_history(*, org: Organization, limit: int = 20) -> QuerySet[Payment]:
    """The organization's payments, newest first (not the ones never confirmed)."""
    return (
        Payment.objects.filter(organization=org)
        .exclude(status=PaymentStatus.REQUIRES_CONFIRMATION)
        .select_related("actor")
        .prefetch_related("receipts")[:limit]
    )


def ledger_entries(*, org: Organization) -> QuerySet[LedgerEntry]:
    """The organization's ledger, newest first."""
    return LedgerEntry.objects.filter(organization=org).select_related("actor")


def payment_for(*, org: Organization, payment_id: int) -> Payment | None:
    return Payment.objects.filter(organization=org, pk=payment_id).first()


def payment_methods(*, org: Organization) -> QuerySet[PaymentMethod]:
    return PaymentMethod.objects.filter(organization=org)


@dataclass(frozen=True)
class MonthDebits:
    month: date  # the first day of the month, in the organization's time zone
    credits: Decimal


@dataclass(frozen=True)
class ModelDebits:
    model_name: str  # "" for usage not attributed to one model
    credits: Decimal


def usage_debits_by_month(
    *,
    org: Organization,
    months: int = 12,
    now: datetime | None = None,
    projects: frozenset[int] | None = None,
) -> list[MonthDebits]:
    """Usage debits per calendar month (dense: months without usage are zero). With
    `projects` (a project chosen, or a member limited to projects), the credits their
    usage was charged, by when it happened: ledger entries carry no project."""
    now = now or timezone.now()
    tz = org_zone(org)
    starts = month_starts(now=now, tz=tz, months=months)
    since = datetime(starts[0].year, starts[0].month, 1, tzinfo=tz)
    if projects is not None:
        per_month = credits_by_month(org=org, start=since, end=now, projects=projects)
        return [MonthDebits(month=m, credits=per_month.get(m, Decimal("0"))) for m in starts]
    rows = (
        LedgerEntry.objects.filter(organization=org, kind=EntryKind.USAGE, created_at__gte=since)
        .annotate(month=TruncMonth("created_at", tzinfo=tz))
        .values("month")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    totals = {_as_date(row["month"]): -row["total"] for row in rows}
    return [MonthDebits(month=m, credits=totals.get(m, Decimal("0"))) for m in starts]


def usage_debits_by_model(
    *,
    org: Organization,
    months: int = 12,
    now: datetime | None = None,
    projects: frozenset[int] | None = None,
) -> list[ModelDebits]:
    """Credits charged per model over the same months as usage_debits_by_month, largest first:
    queries and worker sessions by their model, jobs as one line (usage records carry
    the credits their batch's ledger debit summed)."""
    now = now or timezone.now()
    tz = org_zone(org)
    first = month_starts(now=now, tz=tz, months=months)[0]
    since = datetime(first.year, first.month, 1, tzinfo=tz)
    return [
        ModelDebits(model_name=row.name, credits=row.credits)
        for row in credits_by_model(org=org, start=since, end=now, projects=projects)
    ]


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


LEDGER_EXPORT_FIELDS = (
    "created_at",
    "kind",
    "amount",
    "balance_after",
    "reason",
    "reference",
    "model_name",
    "actor__email",
    "idempotency_key",
)


def ledger_export_rows(*, org: Organization) -> Iterator[tuple]:
    """Every ledger entry as a tuple of LEDGER_EXPORT_FIELDS, oldest first, streamed."""
    return (
        LedgerEntry.objects.filter(organization=org)
        .order_by("created_at", "id")
        .values_list(*LEDGER_EXPORT_FIELDS)
        .iterator(chunk_size=2000)
    )


def usage_charged_through(*, org: Organization) -> datetime | None:
    """When the newest usage debit was posted: the finance figures include usage charged
    until then (how current they are, from the ledger itself)."""
    return (
        LedgerEntry.objects.filter(organization=org, kind=EntryKind.USAGE)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )


# ------------------------------------------------------------------ documents


def statements_of(*, org: Organization) -> QuerySet[Statement]:
    """The organization's statements, newest month first."""
    return Statement.objects.filter(organization=org)


def statement_for(*, org: Organization, statement_id: int) -> Statement | None:
    return Statement.objects.filter(organization=org, pk=statement_id).first()


def receipt_for(*, org: Organization, receipt_id: int) -> Receipt | None:
    return Receipt.objects.select_related("payment").filter(organization=org, pk=receipt_id).first()


def billing_details_of(*, org: Organization) -> BillingDetails | None:
    return BillingDetails.objects.filter(organization=org).first()
