"""Reads across apps for operators: the platform overview that opens Django admin.

Every figure is one aggregate query over all organizations (a fixed number of queries,
whatever their count). "This month" is the calendar month in UTC: operators look at the
platform as a whole, across the organizations' own time zones.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import TIER_MONTHLY_TOKENS
from billing.models import (
    CreditAccount,
    EntryKind,
    LedgerEntry,
    Payment,
    PaymentStatus,
    ReconciliationIssue,
)
from core.calendar import local_month_start
from core.models import SweepRun
from usage.models import IngestBatch, Query

ZERO = Decimal("0")
# An organization this close to its monthly token allocation is "near its limit".
NEAR_ALLOCATION_SHARE = Decimal("0.9")
# A balance below this is low: the default low-balance alert's threshold (10 credits).
LOW_BALANCE = Decimal("10")
TOP_SPENDERS = 5
RECENT_ISSUE_DAYS = 7


@dataclass(frozen=True)
class OrgFigure:
    organization_id: int
    name: str
    value: Decimal  # credits, tokens or a share, as the list says
    detail: str = ""


@dataclass(frozen=True)
class PlatformOverview:
    month_start: datetime
    credits_outstanding: Decimal  # the sum of positive balances
    organizations_in_credit: int
    organizations_overdrawn: int
    payments_count: int
    payments_amount: Decimal  # dollars (major units), succeeded this month
    refunds_count: int
    refunds_amount: Decimal
    top_spenders: list[OrgFigure]
    near_allocation: list[OrgFigure]  # value: tokens used this month
    low_balance: list[OrgFigure]  # value: balance
    records_last_hour: int
    records_last_day: int
    reconciliation_issues: int
    reconciliation_issues_recent: int
    failing_sweeps: list[SweepRun] = field(default_factory=list)


def _money_this_month(since: datetime) -> dict:
    # Money taken this month: payments completed since, including those refunded later.
    taken = Q(status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED], completed_at__gte=since)
    refunded = Q(status=PaymentStatus.REFUNDED, refunded_at__gte=since)
    return Payment.objects.aggregate(
        payments_count=Count("pk", filter=taken),
        payments_minor=Sum("amount_minor", filter=taken),
        refunds_count=Count("pk", filter=refunded),
        refunds_minor=Sum("amount_minor", filter=refunded),
    )


def _top_spenders(since: datetime) -> list[OrgFigure]:
    rows = (
        LedgerEntry.objects.filter(kind=EntryKind.USAGE, created_at__gte=since)
        .values("organization_id", "organization__name")
        .annotate(spent=-Sum("amount"))
        .order_by("-spent", "organization__name")[:TOP_SPENDERS]
    )
    return [OrgFigure(r["organization_id"], r["organization__name"], r["spent"]) for r in rows]


def _near_allocation(since: datetime) -> list[OrgFigure]:
    allocations = {tier: tokens for tier, tokens in TIER_MONTHLY_TOKENS.items() if tokens}
    rows = (
        Query.objects.filter(occurred_at__gte=since, organization__tier__in=list(allocations))
        .values("organization_id", "organization__name", "organization__tier")
        .annotate(tokens=Sum("total_tokens"))
        .order_by("organization__name")
    )
    near = []
    for row in rows:  # one row per organization, not per record
        allocation = allocations[row["organization__tier"]]
        share = Decimal(row["tokens"] or 0) / allocation
        if share >= NEAR_ALLOCATION_SHARE:
            detail = f"{row['tokens']:,} of {allocation:,} tokens ({share:.0%})"
            near.append(OrgFigure(row["organization_id"], row["organization__name"], share, detail))
    return sorted(near, key=lambda figure: -figure.value)


def platform_overview(*, now: datetime | None = None) -> PlatformOverview:
    """The figures an operator looks at first, over every organization (9 queries)."""
    now = now or timezone.now()
    since = local_month_start(now, tz=UTC)
    balances = CreditAccount.objects.aggregate(
        outstanding=Sum("balance", filter=Q(balance__gt=0)),
        in_credit=Count("pk", filter=Q(balance__gt=0)),
        overdrawn=Count("pk", filter=Q(balance__lt=0)),
    )
    low = CreditAccount.objects.filter(balance__lt=LOW_BALANCE).order_by("balance")[:10]
    low_balance = [
        OrgFigure(a.organization_id, a.organization.name, a.balance)
        for a in low.select_related("organization")
    ]
    money = _money_this_month(since)
    ingested = IngestBatch.objects.aggregate(
        hour=Sum("accepted", filter=Q(received_at__gte=now - timedelta(hours=1))),
        day=Sum("accepted", filter=Q(received_at__gte=now - timedelta(days=1))),
    )
    issues = ReconciliationIssue.objects.aggregate(
        total=Count("pk"),
        recent=Count("pk", filter=Q(detected_at__gte=now - timedelta(days=RECENT_ISSUE_DAYS))),
    )
    return PlatformOverview(
        month_start=since,
        credits_outstanding=balances["outstanding"] or ZERO,
        organizations_in_credit=balances["in_credit"],
        organizations_overdrawn=balances["overdrawn"],
        payments_count=money["payments_count"],
        payments_amount=Decimal(money["payments_minor"] or 0) / 100,
        refunds_count=money["refunds_count"],
        refunds_amount=Decimal(money["refunds_minor"] or 0) / 100,
        top_spenders=_top_spenders(since),
        near_allocation=_near_allocation(since),
        low_balance=low_balance,
        records_last_hour=ingested["hour"] or 0,
        records_last_day=ingested["day"] or 0,
        reconciliation_issues=issues["total"],
        reconciliation_issues_recent=issues["recent"],
        failing_sweeps=list(SweepRun.objects.filter(failures_in_a_row__gt=0)),
    )
