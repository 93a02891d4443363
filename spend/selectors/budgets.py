"""Reads for spend controls: each budget's figures, over-cap flags, the budgets an
estimate falls in. Every selector takes the organization."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import APIKey, Organization
from billing.usage_sources import ReconciliationCheck
from core.calendar import org_zone
from spend.models import Budget, BudgetScope, KeyPause, OverCap, Reservation, SpendHold
from spend.services.authorize import applicable_budgets, budgets_spent_and_held
from spend.services.counter_keys import counters_enabled
from spend.services.counters_rebuild import counters_drift
from spend.services.holds import reservation_subjects
from usage.windows import period_of


@dataclass(frozen=True)
class BudgetFigures:
    budget: Budget
    spent: Decimal
    reserved: Decimal
    left: Decimal | None  # to the hard level, else to the soft level
    resets_at: datetime
    projected: Decimal  # end-of-period spend at the current pace
    percent: float  # spent + reserved, of the soft level
    over_cap: int  # over-cap flags this period

    @property
    def level(self) -> Decimal:
        return (
            self.budget.hard_limit if self.budget.hard_limit is not None else self.budget.soft_limit
        )

    @property
    def bar_percent(self) -> float:
        return min(100.0, self.percent)

    @property
    def over_by(self) -> Decimal:
        """How far spent and reserved are past the level (hard, else soft); 0 within it."""
        return max(Decimal(0), -self.left) if self.left is not None else Decimal(0)

    @property
    def state(self) -> str:
        """ "over" past the hard level (requests are refused), "past_soft" past the soft
        level (alerts only), else "ok"."""
        used = self.spent + self.reserved
        if self.budget.hard_limit is not None and used > self.budget.hard_limit:
            return "over"
        if self.budget.soft_limit and used >= self.budget.soft_limit:
            return "past_soft"
        return "ok"


def budgets_of(*, org: Organization) -> QuerySet[Budget]:
    return Budget.objects.filter(organization=org).select_related("api_key", "project")


def budgets_visible(*, org: Organization, project_ids: frozenset[int] | None) -> QuerySet[Budget]:
    """The budgets a person or key limited to these projects sees (None: every budget):
    another project's budget, and the budget of another project's key, are left out."""
    budgets = budgets_of(org=org)
    if project_ids is None:
        return budgets
    return budgets.exclude(Q(scope=BudgetScope.PROJECT) & ~Q(project_id__in=project_ids)).exclude(
        Q(scope=BudgetScope.API_KEY) & ~Q(api_key__project_id__in=project_ids)
    )


def budget_get(
    *, org: Organization, budget_id: int, project_ids: frozenset[int] | None = None
) -> Budget | None:
    return budgets_visible(org=org, project_ids=project_ids).filter(pk=budget_id).first()


def budget_figures(
    *, org: Organization, budgets: list[Budget], now: datetime | None = None
) -> list[BudgetFigures]:
    """Spent, reserved, left, reset time and projection for each budget (4 queries)."""
    now = now or timezone.now()
    tz = org_zone(org)
    figures = budgets_spent_and_held(org=org, budgets=budgets, now=now)
    periods = {b.pk: period_of(b.period, now=now, tz=tz) for b in budgets}
    first = min((p.start for p in periods.values()), default=now)
    flags = dict(
        OverCap.objects.filter(organization=org, budget__in=budgets, at__gte=first)
        .values("budget")
        .annotate(n=Count("id"))
        .values_list("budget", "n")
    )
    out = []
    for b in budgets:
        spent, held = figures[b.pk]
        p = periods[b.pk]
        level = b.hard_limit if b.hard_limit is not None else b.soft_limit
        elapsed = p.elapsed_fraction(now)
        projected = spent / Decimal(str(elapsed)) if elapsed > 0.001 else spent
        percent = float((spent + held) / b.soft_limit * 100) if b.soft_limit else 0.0
        out.append(
            BudgetFigures(
                budget=b,
                spent=spent,
                reserved=held,
                left=level - spent - held,
                resets_at=p.resets_at,
                projected=projected.quantize(Decimal("0.000001")),
                percent=percent,
                over_cap=flags.get(b.pk, 0),
            )
        )
    return out


def budgets_for_request(
    *, org: Organization, api_key_id: int | None, member: str, now: datetime | None = None
) -> list[BudgetFigures]:
    """The budgets a request by this key (and its project) and member would count
    against, with figures."""
    project_id = None
    if api_key_id is not None:
        project_id = (
            APIKey.objects.filter(organization=org, pk=api_key_id)
            .values_list("project_id", flat=True)
            .first()
        )
    budgets = applicable_budgets(
        org_id=org.pk, api_key_id=api_key_id, member=member, project_id=project_id
    )
    return budget_figures(org=org, budgets=budgets, now=now)


def keys_spend_flags(*, org: Organization, since: datetime) -> dict[int, dict]:
    """Per API key: paused (bool) and over-cap credits flagged since `since`."""
    paused = set(KeyPause.objects.filter(organization=org).values_list("api_key_id", flat=True))
    over = dict(
        OverCap.objects.filter(organization=org, at__gte=since, api_key__isnull=False)
        .values("api_key")
        .annotate(total=Sum("credits") + Sum("uncharged_credits"))
        .values_list("api_key", "total")
    )
    return {key: {"paused": key in paused, "over_cap": over.get(key)} for key in paused | set(over)}


def spend_reconcile_counts(*, org: Organization, days: int, now: datetime | None = None) -> dict:
    """For reconciliation: over-cap flags of the last `days` days, and whether each
    subject's hold equals the sum of its live reservations (0 or the mismatches)."""
    from datetime import timedelta

    now = now or timezone.now()
    over = OverCap.objects.filter(organization=org, at__gte=now - timedelta(days=days))
    expected: dict[tuple[str, str], Decimal] = {}
    held = Reservation.objects.filter(organization=org, status="held").values_list(
        "api_key_id", "member", "project_id", "credits"
    )
    for key_id, member, project_id, credits in held:
        for subject in reservation_subjects(
            api_key_id=key_id, member=member, project_id=project_id
        ):
            expected[subject] = expected.get(subject, Decimal(0)) + credits
    if counters_enabled():
        # The holds table is then refreshed from the rows by each batch; the holds that
        # can drift are Redis' counters, compared with the database instead.
        drift = counters_drift(org=org).get("spend_counter_drift", 0)
        return {"over_cap_flags": over.count(), "spend_hold_mismatches": drift}
    mismatches = sum(
        1
        for d, s, credits in SpendHold.objects.filter(organization=org).values_list(
            "dimension", "subject", "credits"
        )
        if credits != expected.get((d, s), Decimal(0))
    )
    return {"over_cap_flags": over.count(), "spend_hold_mismatches": mismatches}


def spend_reconciliation_check(
    *, org: Organization, days: int, now: datetime | None = None
) -> ReconciliationCheck:
    """Billing's nightly reconciliation counts over-cap usage and hold mismatches."""
    return ReconciliationCheck(
        checked=0, skipped=0, issues=[], counts=spend_reconcile_counts(org=org, days=days, now=now)
    )
