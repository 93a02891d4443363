"""Monthly statements: issued once per closed calendar month (organization's zone), in
order, and never changed.

A statement covers the ledger entries dated before its month's end that were posted
by the time it was issued (`last_entry_id`: ledger ids grow in posting order per
organization, since every post holds the credit account's row lock, and so does
issuing). So, with S(n) the entries covered by statement n:

    closing(n) = sum S(n) = the ledger's sum at the month's end, as of issue
    opening(n) = closing(n-1)
    lines(n)   = S(n) - S(n-1): the month's own entries, plus entries dated in an earlier
                 (already stated) month but posted after its statement: restatements,
                 each its own line.

Usage debits are summed, then broken down by kind, model, API key and project by the
usage app, which registers its breakdown here (billing sits below usage and cannot
import it).
"""

import logging
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from functools import partial

from django.db import transaction
from django.db.models import Max, QuerySet, Sum
from django.utils import timezone

from accounts.mail import LinkSafeEmail, site_link
from accounts.models import APIKey, Membership, Organization, Project, Role
from billing.document_render import statement_pdf
from billing.models import CreditAccount, EntryKind, LedgerEntry, Statement
from billing.money import credits_round, credits_text
from billing.services.documents import buyer_details, seller_details
from billing.signals import statement_issued
from billing.usage_sources import usage_breakdowns
from core.calendar import first_day_of_month, month_after, month_bounds, org_zone

logger = logging.getLogger(__name__)

ZERO = Decimal("0")


class StatementError(Exception):
    """A statement that cannot be issued (the month is open, or one before it is missing)."""


# Months ---------------------------------------------------------------------------------------


def _month_before(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def statement_months_due(*, org: Organization, now: datetime | None = None) -> list[date]:
    """Closed months without a statement, oldest first, from the first month the ledger
    has an entry in (a month with no activity still gets its statement)."""
    tz = org_zone(org)
    now = now or timezone.now()
    this_month = first_day_of_month(now.astimezone(tz).date())
    last = Statement.objects.filter(organization=org).order_by("-month").first()
    if last is not None:
        month = month_after(last.month)
    else:
        first = LedgerEntry.objects.filter(organization=org).order_by("created_at").first()
        if first is None:
            return []
        month = first_day_of_month(first.created_at.astimezone(tz).date())
    months = []
    while month < this_month:
        months.append(month)
        month = month_after(month)
    return months


# Issuing --------------------------------------------------------------------------------------


def _sum(entries: QuerySet[LedgerEntry]) -> Decimal:
    total = entries.aggregate(total=Sum("amount"))["total"]
    # SQLite sums decimals in floating point: back to the ledger's scale.
    return credits_round(Decimal(total)) if total is not None else ZERO


def _money(value: Decimal) -> str:
    return str(credits_round(value))


SECTIONS = (
    (EntryKind.PURCHASE, "purchases"),
    (EntryKind.GRANT, "grants"),
    (EntryKind.REFUND, "refunds"),
    (EntryKind.ADJUSTMENT, "adjustments"),
)


def _entry_lines(entries: QuerySet[LedgerEntry], tz) -> list[dict]:
    return [
        {
            "section": kind,
            "date": created_at.astimezone(tz).date().isoformat(),
            "description": reason,
            "amount": _money(amount),
        }
        for kind, created_at, reason, amount in entries.exclude(kind=EntryKind.USAGE)
        .order_by("created_at", "id")
        .values_list("kind", "created_at", "reason", "amount")
    ]


def _restatement_lines(restated: QuerySet[LedgerEntry], tz) -> list[dict]:
    """Entries dated in an already stated month: non-usage ones one by one, usage summed
    per month it was dated in."""
    lines = []
    for line in _entry_lines(restated, tz):
        month = date.fromisoformat(line["date"])  # the day it was dated
        line.update(
            section="restatement",
            description=f"{EntryKind(line['section']).label} dated {month.day} {month:%b %Y}, "
            f"recorded after its statement: {line['description']}",
        )
        lines.append(line)
    usage: defaultdict[date, Decimal] = defaultdict(lambda: ZERO)
    for created_at, amount in restated.filter(kind=EntryKind.USAGE).values_list(
        "created_at", "amount"
    ):
        usage[first_day_of_month(created_at.astimezone(tz).date())] += amount
    for month, amount in sorted(usage.items()):
        lines.append(
            {
                "section": "restatement",
                "date": month.isoformat(),
                "description": f"Usage dated {month:%B %Y}, recorded after its statement",
                "amount": _money(amount),
            }
        )
    return lines


def _table(amounts: dict[str, Decimal]) -> list[list[str]]:
    rows = sorted(((k, v) for k, v in amounts.items() if v), key=lambda kv: (kv[1], kv[0]))
    return [[label, _money(amount)] for label, amount in rows]


def _usage_breakdown(org, usage_entries, period_start, usage_total: Decimal) -> dict:
    """Usage debits (negative) by kind, model, API key and project; what the usage records
    do not explain is its own "Not itemized" row, so every table sums to the usage total."""
    by_kind: dict[str, Decimal] = defaultdict(lambda: ZERO)
    by_model: dict[str, Decimal] = defaultdict(lambda: ZERO)
    by_key_id: dict[int | None, Decimal] = defaultdict(lambda: ZERO)
    by_project_id: dict[int | None, Decimal] = defaultdict(lambda: ZERO)
    late = ZERO
    for breakdown in usage_breakdowns():
        for row in breakdown(org=org, entries=usage_entries, period_start=period_start):
            debit = -credits_round(Decimal(row.credits))
            by_kind[row.kind] += debit
            by_model[row.model or f"{row.kind} (no model)"] += debit
            by_key_id[row.api_key_id] += debit
            by_project_id[row.project_id] += debit
            if row.occurred_before:
                late += debit
    itemized = sum(by_kind.values(), ZERO)
    rest = credits_round(usage_total - itemized)
    keys = {
        key.pk: f"{key.name} ({key.display})"
        for key in APIKey.objects.filter(organization=org, pk__in=[k for k in by_key_id if k])
    }
    by_key = {keys.get(k, "Unattributed") if k else "Unattributed": v for k, v in by_key_id.items()}
    projects: dict[int | None, str] = dict(
        Project.objects.filter(
            organization=org, pk__in=[p for p in by_project_id if p]
        ).values_list("pk", "name")
    )
    by_project = {projects.get(p, "Unattributed"): v for p, v in by_project_id.items()}
    if rest:
        for table in (by_kind, by_model, by_key, by_project):
            table["Not itemized"] = table.get("Not itemized", ZERO) + rest
    return {
        "by_kind": _table(by_kind),
        "by_model": _table(by_model),
        "by_api_key": _table(by_key),
        # Statements issued before projects existed have no "by_project": they stay as issued.
        "by_project": _table(by_project),
        "occurred_before": _money(late),
    }


def _statement_content(org, *, in_period, restated, period_start, tz) -> dict:
    lines = _entry_lines(in_period, tz)
    totals = {name: _sum(in_period.filter(kind=kind)) for kind, name in SECTIONS}
    usage_entries = in_period.filter(kind=EntryKind.USAGE)
    totals["usage"] = _sum(usage_entries)
    restatements = _restatement_lines(restated, tz)
    totals["restatements"] = _sum(restated)
    return {
        "lines": lines,
        "restatements": restatements,
        "totals": {name: _money(value) for name, value in totals.items()},
        "usage": _usage_breakdown(org, usage_entries, period_start, totals["usage"]),
    }


def _account_lock(org: Organization) -> None:
    CreditAccount.objects.get_or_create(organization=org)
    list(CreditAccount.objects.select_for_update().filter(organization=org).values("pk"))


@transaction.atomic
def statement_issue(*, org: Organization, month: date, now: datetime | None = None) -> Statement:
    """Issue the statement of a closed month (once: issuing again returns it unchanged).
    The month before it must have its statement unless this is the first."""
    now = now or timezone.now()
    tz = org_zone(org)
    month = first_day_of_month(month)
    start, end = month_bounds(month=month, tz=tz)
    if end > now:
        raise StatementError(f"{month:%B %Y} has not closed yet")
    _account_lock(org)  # no post lands while the covered entries are read
    existing = Statement.objects.filter(organization=org, month=month).first()
    if existing is not None:
        return existing
    previous = (
        Statement.objects.filter(organization=org, month__lt=month).order_by("-month").first()
    )
    if previous is not None and previous.month != _month_before(month):
        raise StatementError(f"issue {month_after(previous.month):%B %Y} first")
    entries = LedgerEntry.objects.filter(organization=org)
    last_id = entries.aggregate(top=Max("pk"))["top"] or 0
    entries = entries.filter(pk__lte=last_id)
    if previous is None:
        opening = _sum(entries.filter(created_at__lt=start))
        restated = entries.none()
    else:
        opening = previous.closing_balance
        restated = entries.filter(pk__gt=previous.last_entry_id, created_at__lt=start)
    in_period = entries.filter(created_at__gte=start, created_at__lt=end)
    closing = _sum(entries.filter(created_at__lt=end))
    if credits_round(opening + _sum(in_period) + _sum(restated)) != closing:
        raise StatementError("the statements before this one do not add up to the ledger")
    statement = Statement.objects.create(
        organization=org,
        month=month,
        time_zone=str(tz),
        period_start=start,
        period_end=end,
        opening_balance=opening,
        closing_balance=closing,
        last_entry_id=last_id,
        content=_statement_content(
            org, in_period=in_period, restated=restated, period_start=start, tz=tz
        ),
        seller=seller_details(),
        buyer=buyer_details(org=org),
        issued_at=now,
    )
    logger.info(
        "billing.statement.issued",
        extra={"org": org.pk, "month": month.isoformat(), "closing": str(closing)},
    )
    transaction.on_commit(
        partial(statement_issued.send, sender=statement_issued, statement_id=statement.pk)
    )
    return statement


def statements_issue_due(*, org: Organization, now: datetime | None = None) -> list[Statement]:
    """Issue every closed month's missing statement, oldest first."""
    return [
        statement_issue(org=org, month=month, now=now)
        for month in statement_months_due(org=org, now=now)
    ]


@transaction.atomic
def statement_notify(*, statement_id: int) -> int:
    """Email the statement's link to the owners and billing members, once (running it
    again sends nothing); returns how many addresses it went to."""
    from django.conf import settings

    claimed = Statement.objects.filter(pk=statement_id, notified_at__isnull=True).update(
        notified_at=timezone.now()
    )
    if not claimed:
        return 0
    statement = Statement.objects.select_related("organization").get(pk=statement_id)
    org = statement.organization
    recipients = sorted(
        Membership.objects.filter(organization=org, role__in=[Role.OWNER, Role.BILLING])
        .filter(user__is_active=True)
        .values_list("user__email", flat=True)
    )
    if not recipients:
        return 0
    url = site_link("billing:statement", org.slug, statement.pk)
    message = LinkSafeEmail(
        subject=f"{org.name}: your statement for {statement.month:%B %Y}",
        body=(
            f"The statement of {org.name} for {statement.month:%B %Y} is ready.\n\n"
            f"Opening balance: {credits_text(statement.opening_balance, exact=True)}\n"
            f"Closing balance: {credits_text(statement.closing_balance, exact=True)}\n\n"
            f"Read it (HTML, PDF or CSV): {url}\n"
        ),
        to=recipients,
    )
    if settings.BILLING_STATEMENT_ATTACH_PDF:
        message.attach(
            f"statement-{statement.month:%Y-%m}.pdf", statement_pdf(statement), "application/pdf"
        )
    message.send()
    return len(recipients)
