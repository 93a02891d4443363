"""What billing reads from the usage app above it.

Billing never imports usage. Usage registers what billing asks of it here when it
starts (UsageConfig.ready): the usage debits of a statement itemized by the records
they charged, credits by model for the finance page, and the checks of its rollups that
the nightly reconciliation runs beside billing's own balance check.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from accounts.models import Organization


@dataclass(frozen=True)
class UsageBreakdownRow:
    kind: str  # "Queries", "Worker sessions", "Jobs", "Matching runs"
    model: str  # a price-list model, or "" for kinds without one
    api_key_id: int | None  # None: unattributed
    occurred_before: bool  # the usage happened before the statement's month (arrived late)
    credits: Decimal
    project_id: int | None = None  # the project of the key or controller that sent it


UsageBreakdown = Callable[..., Iterable[UsageBreakdownRow]]


@dataclass(frozen=True)
class ModelCredits:
    name: str
    credits: Decimal


CreditsByModel = Callable[..., list[ModelCredits]]
CreditsByMonth = Callable[..., dict[date, Decimal]]


@dataclass(frozen=True)
class ReconciliationCheck:
    """What one registered check found for one organization: the issues it recorded
    (ReconciliationIssue rows), how many items it checked and skipped, and figures it
    counts for the report (reported, never fixed)."""

    checked: int
    skipped: int
    issues: list[Any]
    counts: dict[str, int] = field(default_factory=dict)


ReconciliationChecker = Callable[..., ReconciliationCheck]

_breakdowns: list[UsageBreakdown] = []
_credits_by_model: list[CreditsByModel] = []
_credits_by_month: list[CreditsByMonth] = []
_reconciliation_checks: list[ReconciliationChecker] = []


def statement_usage_breakdown_register(breakdown: UsageBreakdown) -> None:
    """Register fn(*, org, entries, period_start) -> rows (idempotent per function)."""
    if breakdown not in _breakdowns:
        _breakdowns.append(breakdown)


def usage_breakdowns() -> list[UsageBreakdown]:
    return list(_breakdowns)


def credits_by_model_register(source: CreditsByModel) -> None:
    """Register fn(*, org, start, end, projects) -> [ModelCredits], largest first (one
    source)."""
    _credits_by_model[:] = [source]


def credits_by_model(
    *,
    org: Organization,
    start: datetime | None,
    end: datetime,
    projects: frozenset[int] | None = None,
) -> list[ModelCredits]:
    """Credits charged for usage in [start, end) by model, of the projects given (None:
    the whole organization); none before usage registers."""
    if not _credits_by_model:
        return []
    return _credits_by_model[0](org=org, start=start, end=end, projects=projects)


def credits_by_month_register(source: CreditsByMonth) -> None:
    """Register fn(*, org, start, end, projects) -> {month's first day: credits} (one
    source)."""
    _credits_by_month[:] = [source]


def credits_by_month(
    *, org: Organization, start: datetime, end: datetime, projects: frozenset[int] | None
) -> dict[date, Decimal]:
    """Credits charged for usage in [start, end) per month in the organization's zone, of
    the projects given, by when the usage happened; none before usage registers."""
    if not _credits_by_month:
        return {}
    return _credits_by_month[0](org=org, start=start, end=end, projects=projects)


def reconciliation_check_register(check: ReconciliationChecker) -> None:
    """Register fn(*, org, days, now) -> ReconciliationCheck (idempotent per function)."""
    if check not in _reconciliation_checks:
        _reconciliation_checks.append(check)


def reconciliation_checks() -> list[ReconciliationChecker]:
    return list(_reconciliation_checks)
