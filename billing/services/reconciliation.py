"""Reconciliation: derived figures checked against their source of truth, never fixed.

Two checks per organization:

- balance: the cached balance (CreditAccount) equals the ledger's sum. Read under the
  account's row lock, so a ledger post landing between the two reads cannot make a
  false alarm (ledger_post moves both under the same lock).
- rollups: every closed, clean day of the last N days (the days dashboards read from
  the rollup tables, see usage/coverage.py) holds the rows a fresh aggregate of the raw
  records gives. The fresh rows are computed into memory with the rollup builder's own
  SELECTs (no write); the per-model, per-endpoint and per-member query rows are
  aggregated from the raw queries directly, not from the detail rows. The day's state
  row is locked while comparing, so ingestion marking it dirty (or a recompute) cannot
  interleave; a day dirtied meanwhile is skipped (it reads raw until recomputed).

A mismatch is logged at ERROR ("billing.reconcile.mismatch"), recorded as a
ReconciliationIssue (read-only in admin) and mailed to the operators (settings.ADMINS).
Nothing is corrected: a wrong cached balance or rollup is a bug to understand first,
and `manage.py rollup` or a ledger adjustment is the operator's deliberate fix.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.mail import mail_admins
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from accounts.models import Organization
from billing.models import CreditAccount, ReconciliationIssue, ReconciliationKind
from billing.selectors import ledger_sum

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
    # Figures the registered counters report (spend controls: over-cap usage), summed.
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.issues


def _money(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _issue(org: Organization, **fields: Any) -> ReconciliationIssue:
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
    return _issue(
        org,
        kind=ReconciliationKind.BALANCE,
        message=(
            f"{org.slug}: cached balance {_money(cached)} differs from the ledger sum "
            f"{_money(total)} by {_money(cached - total)}"
        ),
        expected={"ledger_sum": _money(total)},
        found={"cached_balance": _money(cached)},
    )


# Rollups ----------------------------------------------------------------------------


def _comparable(value: Any) -> Any:
    # Decimals compare by value whatever their scale; aware datetimes by instant.
    return value.normalize() if isinstance(value, Decimal) else value


def _fresh_rows(org: Organization, day: date, tz: str) -> dict[str, dict[tuple, dict]]:
    """The day's rollup rows as the raw records give them now, per kind (nothing written)."""
    from usage.models import Query, QueryDimension
    from usage.services.rollup import KINDS, _selects, _sum
    from usage.windows import local_day_range

    lo, hi = local_day_range(day, tz=tz)
    selects = _selects(org, day, lo, hi)
    fresh: dict[str, dict[tuple, dict]] = {}
    for kind in KINDS:
        rows = fresh.setdefault(kind.name, {})
        for row in selects[kind.name]:
            key = tuple(row[d] if d in row else row[f"r_{d}"] for d in kind.dimensions)
            rows[key] = {f: row[f"r_{f}"] for f in kind.figures}
    # Per model, endpoint and member straight from the raw queries (the builder sums its
    # own detail rows, which would hide a wrong detail row from this check).
    queries = Query.objects.filter(organization_id=org.pk, occurred_at__gte=lo, occurred_at__lt=hi)
    sums = ("input_tokens", "output_tokens", "total_tokens", "credits")
    figures = {f"f_{name}": _sum(name, Query) for name in sums}
    for dimension, column in (
        (QueryDimension.MODEL, "model_id"),
        (QueryDimension.ENDPOINT, "endpoint"),
        (QueryDimension.MEMBER, "member"),
    ):
        grouped = queries.values(column).annotate(f_queries=Count("id"), **figures).order_by()
        for row in grouped:
            key = (
                dimension,
                row[column] if column == "model_id" else None,
                None,
                row[column] if column == "endpoint" else "",
                row[column] if column == "member" else "",
            )
            fresh["query"][key] = {name: row[f"f_{name}"] for name in ("queries", *sums)}
    return fresh


def _differences(kind, stored: dict[tuple, dict], fresh: dict[tuple, dict]) -> list[dict]:
    from usage.services.rollup import _figures_json

    changes = []
    for key in sorted(set(stored) | set(fresh), key=repr):
        old, new = stored.get(key), fresh.get(key)
        same = (
            old is not None
            and new is not None
            and all(_comparable(old[f]) == _comparable(new[f]) for f in kind.figures)
        )
        if same:
            continue
        changes.append(
            {
                "dimension": {
                    d.removesuffix("_id"): v for d, v in zip(kind.dimensions, key, strict=True)
                },
                "expected": _figures_json(new),
                "found": _figures_json(old),
            }
        )
    return changes


def reconcile_rollup_day(*, org: Organization, day: date) -> list[ReconciliationIssue] | None:
    """Compare one clean rollup day with the raw records: one issue per rollup table that
    differs. None when the day is not clean (any more): nothing to compare."""
    from usage.models import RollupState
    from usage.services.rollup import KINDS, _snapshot

    tz = org.time_zone or "UTC"
    no_key = connection.features.has_select_for_no_key_update
    with transaction.atomic():
        state = (
            RollupState.objects.select_for_update(no_key=no_key)
            .filter(
                organization_id=org.pk,
                day=day,
                dirty=False,
                computed_at__isnull=False,
                time_zone=tz,
            )
            .first()
        )
        if state is None:
            return None
        stored = _snapshot(org, day)
        fresh = _fresh_rows(org, day, tz)
    issues = []
    for kind in KINDS:
        changes = _differences(kind, stored[kind.name], fresh[kind.name])
        if not changes:
            continue
        issues.append(
            _issue(
                org,
                kind=ReconciliationKind.ROLLUP,
                day=day,
                rollup=kind.name,
                message=(
                    f"{org.slug}: {kind.name} rollup of {day} differs from the raw records "
                    f"in {len(changes)} row(s)"
                ),
                expected={
                    "differing_rows": len(changes),
                    "rows": [
                        {"dimension": c["dimension"], "figures": c["expected"]}
                        for c in changes[:MAX_ROWS_PER_ISSUE]
                    ],
                },
                found={
                    "rows": [
                        {"dimension": c["dimension"], "figures": c["found"]}
                        for c in changes[:MAX_ROWS_PER_ISSUE]
                    ],
                },
            )
        )
    return issues


# Counters higher apps register from their AppConfig.ready (usage: over-cap usage and its
# spend counters): fn(org=, days=, now=) -> {name: count}, reported, never fixed.
RECONCILE_COUNTERS: list[Callable[..., dict[str, int]]] = []


def reconcile_counter_register(counter: Callable[..., dict[str, int]]) -> None:
    if counter not in RECONCILE_COUNTERS:
        RECONCILE_COUNTERS.append(counter)


def _counted(report: ReconcileReport, counts: dict[str, int]) -> None:
    for name, value in counts.items():
        report.counts[name] = report.counts.get(name, 0) + value


def reconcile_organization(
    *, org: Organization, days: int = DEFAULT_DAYS, now: datetime | None = None
) -> ReconcileReport:
    """Check one organization: its balance, and its clean rollup days of the last `days`."""
    from usage.models import RollupState
    from usage.services.rollup import org_today

    report = ReconcileReport(organizations=1)
    balance_issue = reconcile_balance(org=org)
    report.balances_checked = 1
    if balance_issue is not None:
        report.issues.append(balance_issue)
    today = org_today(org, now=now)
    clean_days = (
        RollupState.objects.filter(
            organization=org,
            dirty=False,
            computed_at__isnull=False,
            time_zone=org.time_zone or "UTC",
            day__gte=today - timedelta(days=days),
            day__lt=today,
        )
        .order_by("day")
        .values_list("day", flat=True)
    )
    for day in clean_days:
        found = reconcile_rollup_day(org=org, day=day)
        if found is None:
            report.days_skipped += 1
            continue
        report.days_checked += 1
        report.issues.extend(found)
    for counter in RECONCILE_COUNTERS:
        _counted(report, counter(org=org, days=days, now=now))
    return report


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
            from billing.sweeps import sweep_failure_record

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
    "reconcile_rollup_day",
]
