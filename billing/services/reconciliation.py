"""Reconciliation: derived figures checked against their source of truth, never fixed.

Per organization: billing's own check, then the checks the apps above registered
(billing/usage_sources.py; rollups checks its rollup days, rollups/services/reconcile.py;
spend compares its Redis counters with PostgreSQL, spend/selectors/budgets.py).

- balance: the cached balance (CreditAccount) equals the ledger's sum. Read under the
  account's row lock, so a ledger post landing between the two reads cannot make a
  false alarm (ledger_post moves both under the same lock).

A mismatch is logged at ERROR ("billing.reconcile.mismatch"), recorded as a
ReconciliationIssue (read-only in admin) and mailed to the operators (settings.ADMINS).
Nothing is corrected: a wrong cached balance or rollup is a bug to understand first,
and `manage.py rollup` or a ledger adjustment is the operator's deliberate fix.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.mail import mail_admins
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Organization
from billing.models import CreditAccount, ReconciliationIssue, ReconciliationKind
from billing.selectors import ledger_sum
from billing.usage_sources import reconciliation_checks
from core.sweeps import sweep_failure_record

logger = logging.getLogger(__name__)

DEFAULT_DAYS = 7
# Differing rollup rows kept in one issue (the count says how many there were).
MAX_ROWS_PER_ISSUE = 20


@dataclass
class ReconcileReport:
    organizations: int = 0
    balances_checked: int = 0
    days_checked: int = 0
    days_skipped: int = 0  # dirtied while the run went (they read raw until recomputed)
    issues: list[ReconciliationIssue] = field(default_factory=list)
    # Organizations whose check raised (recorded as SweepFailure rows; the rest went on).
    failed_organizations: list[str] = field(default_factory=list)
    # Figures the registered checks count, summed (usage: over-cap usage, spend holds).
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.issues


def _money(value: Decimal) -> str:
    return format(value.normalize(), "f")


def reconciliation_issue_record(org: Organization, **fields: Any) -> ReconciliationIssue:
    """Record a mismatch and log it at ERROR (the checks of other apps call this too)."""
    issue = ReconciliationIssue.objects.create(organization=org, **fields)
    logger.error(
        "billing.reconcile.mismatch",
        extra={
            "org": org.pk,
            "issue": issue.pk,
            "kind": issue.kind,
            "day": issue.day.isoformat() if issue.day else None,
            "rollup": issue.rollup,
            "expected": issue.expected,
            "found": issue.found,
        },
    )
    return issue


def reconcile_balance(*, org: Organization) -> ReconciliationIssue | None:
    """Compare the cached balance with the ledger's sum; an issue if they differ."""
    no_key = connection.features.has_select_for_no_key_update
    with transaction.atomic():
        cached = (
            CreditAccount.objects.select_for_update(no_key=no_key)
            .filter(organization=org)
            .values_list("balance", flat=True)
            .first()
        )
        total = ledger_sum(org=org)
    cached = cached if cached is not None else Decimal("0")
    if cached == total:
        return None
    return reconciliation_issue_record(
        org,
        kind=ReconciliationKind.BALANCE,
        message=(
            f"{org.slug}: cached balance {_money(cached)} differs from the ledger sum "
            f"{_money(total)} by {_money(cached - total)}"
        ),
        expected={"ledger_sum": _money(total)},
        found={"cached_balance": _money(cached)},
    )


def reconcile_organization(
    *, org: Organization, days: int = DEFAULT_DAYS, now: datetime | None = None
) -> ReconcileReport:
    """Check one organization: its balance, then what the apps above registered (usage:
    its clean rollup days of the last `days`)."""
    report = ReconcileReport(organizations=1)
    balance_issue = reconcile_balance(org=org)
    report.balances_checked = 1
    if balance_issue is not None:
        report.issues.append(balance_issue)
    for check in reconciliation_checks():
        found = check(org=org, days=days, now=now)
        report.days_checked += found.checked
        report.days_skipped += found.skipped
        report.issues.extend(found.issues)
        _counted(report, found.counts)
    return report


def _counted(report: ReconcileReport, counts: dict[str, int]) -> None:
    for name, value in counts.items():
        report.counts[name] = report.counts.get(name, 0) + value


def reconcile_all(
    *, days: int = DEFAULT_DAYS, org_slug: str | None = None, now: datetime | None = None
) -> ReconcileReport:
    """Reconcile every organization (or the one with `org_slug`); mail the operators
    when something does not match."""
    started = timezone.now()
    report = ReconcileReport()
    orgs = Organization.objects.order_by("pk")
    if org_slug is not None:
        orgs = orgs.filter(slug=org_slug)
    for org in orgs.iterator():
        try:
            one = reconcile_organization(org=org, days=days, now=now)
        except Exception as exc:  # one organization's failure never stops the others
            sweep_failure_record(
                org_id=org.pk, sweep="reconcile", target="", error=exc, attempt=1, final=True
            )
            report.failed_organizations.append(org.slug)
            continue
        report.organizations += 1
        report.balances_checked += one.balances_checked
        report.days_checked += one.days_checked
        report.days_skipped += one.days_skipped
        report.issues.extend(one.issues)
        _counted(report, one.counts)
    reconcile_report(report, started=started)
    return report


def reconcile_report(report: ReconcileReport, *, started=None) -> None:
    """Log the run's outcome; mail the operators when something does not match."""
    duration_ms = round((timezone.now() - (started or timezone.now())).total_seconds() * 1000)
    logger.log(
        logging.ERROR if report.issues or report.failed_organizations else logging.INFO,
        "billing.reconcile.done",
        extra={
            "organizations": report.organizations,
            "days_checked": report.days_checked,
            "issues": len(report.issues),
            "failed_organizations": len(report.failed_organizations),
            "duration_ms": duration_ms,
        },
    )
    if report.issues:
        _operators_alert(report)


def _operators_alert(report: ReconcileReport) -> None:
    lines = [issue.message for issue in report.issues[:50]]
    if len(report.issues) > 50:
        lines.append(f"... and {len(report.issues) - 50} more")
    mail_admins(
        subject=f"Reconciliation: {len(report.issues)} mismatch(es)",
        message=(
            "The nightly reconciliation found derived figures that do not match their "
            "source of truth. Nothing was changed; see Reconciliation issues in the admin.\n\n"
            + "\n".join(lines)
            + "\n"
        ),
        fail_silently=True,
    )


__all__ = [
    "ReconcileReport",
    "reconcile_all",
    "reconcile_balance",
    "reconcile_organization",
    "reconcile_report",
    "reconciliation_issue_record",
]
