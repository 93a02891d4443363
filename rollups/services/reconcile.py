"""Reconciliation of the rollups: every closed, clean day of the last N days (the days
dashboards read from the rollup tables, see rollups/selectors/coverage.py) holds the rows
a fresh aggregate of the raw records gives.

The fresh rows are computed into memory with the rollup builder's own SELECTs (no
write); the per-model, per-endpoint and per-member query rows are aggregated from the
raw queries directly, not from the detail rows. The day's state row is locked while
comparing, so ingestion marking it dirty (or a recompute) cannot interleave; a day
dirtied meanwhile is skipped (it reads raw until recomputed). Registered with billing's
nightly reconciliation (UsageConfig.ready), which records and mails what differs.
"""

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Count

from accounts.models import Organization
from billing.models import ReconciliationIssue, ReconciliationKind
from billing.services.reconciliation import MAX_ROWS_PER_ISSUE, reconciliation_issue_record
from billing.usage_sources import ReconciliationCheck
from core.calendar import local_day_range, org_today
from rollups.models import QueryDimension, RollupState
from rollups.services.build import (
    KINDS,
    RollupKind,
    figure_sum,
    figures_json,
    rollup_selects,
    rollup_snapshot,
)
from usage.models import Query


def _comparable(kind: RollupKind, figure: str, value: Any) -> Any:
    """The figure as its column stores it: decimals at the column's scale (SQLite sums a
    decimal column as a float, 0.0790985999999999 for 0.0790986), whatever their scale
    as written; aware datetimes compare by instant."""
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        places = kind.model._meta.get_field(figure).decimal_places  # type: ignore[union-attr]
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return value


def _fresh_rows(org: Organization, day: date, tz: str) -> dict[str, dict[tuple, dict]]:
    """The day's rollup rows as the raw records give them now, per kind (nothing written)."""

    lo, hi = local_day_range(day, tz=tz)
    selects = rollup_selects(org, day, lo, hi)
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
    figures = {f"f_{name}": figure_sum(name, Query) for name in sums}
    for dimension, column in (
        (QueryDimension.MODEL, "model_id"),
        (QueryDimension.ENDPOINT, "endpoint"),
        (QueryDimension.MEMBER, "member"),
    ):
        grouped = (
            queries.values(column, "project_id")
            .annotate(f_queries=Count("id"), **figures)
            .order_by()
        )
        for row in grouped:
            key = (
                dimension,
                row["project_id"],
                row[column] if column == "model_id" else None,
                None,
                row[column] if column == "endpoint" else "",
                row[column] if column == "member" else "",
            )
            fresh["query"][key] = {name: row[f"f_{name}"] for name in ("queries", *sums)}
    return fresh


def _differences(kind, stored: dict[tuple, dict], fresh: dict[tuple, dict]) -> list[dict]:

    changes = []
    for key in sorted(set(stored) | set(fresh), key=repr):
        old, new = stored.get(key), fresh.get(key)
        same = (
            old is not None
            and new is not None
            and all(
                _comparable(kind, f, old[f]) == _comparable(kind, f, new[f]) for f in kind.figures
            )
        )
        if same:
            continue
        changes.append(
            {
                "dimension": {
                    d.removesuffix("_id"): v for d, v in zip(kind.dimensions, key, strict=True)
                },
                "expected": figures_json(new),
                "found": figures_json(old),
            }
        )
    return changes


def reconcile_rollup_day(*, org: Organization, day: date) -> list[ReconciliationIssue] | None:
    """Compare one clean rollup day with the raw records: one issue per rollup table that
    differs. None when the day is not clean (any more): nothing to compare."""

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
        stored = rollup_snapshot(org, day)
        fresh = _fresh_rows(org, day, tz)
    issues = []
    for kind in KINDS:
        changes = _differences(kind, stored[kind.name], fresh[kind.name])
        if not changes:
            continue
        issues.append(
            reconciliation_issue_record(
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


def rollups_reconcile(
    *, org: Organization, days: int, now: datetime | None = None
) -> ReconciliationCheck:
    """Compare the organization's clean rollup days of the last `days` with the raw records."""
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
    checked, skipped, issues = 0, 0, []
    for day in clean_days:
        found = reconcile_rollup_day(org=org, day=day)
        if found is None:
            skipped += 1
            continue
        checked += 1
        issues.extend(found)
    return ReconciliationCheck(checked=checked, skipped=skipped, issues=issues)
