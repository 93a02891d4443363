"""Spend counters rebuilt from PostgreSQL, the system of record, and compared with it
(reconciliation): what the database says each counter should be (docs/spend-controls.md)."""

import logging
import secrets
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Organization
from billing.models import CreditAccount
from core.calendar import org_zone
from spend import counters
from spend.models import Budget, KeyPause, Reservation, ReservationStatus, SpendDay
from spend.services.counter_keys import (
    UNAVAILABLE,
    drops_key,
    epoch_ms,
    org_keys,
    period_starts,
    reservation_value,
)
from spend.services.holds import budget_subject, reservation_subjects, spend_lock
from usage.selectors.records import month_to_date_tokens
from usage.windows import period_of

logger = logging.getLogger(__name__)


def reservations_expire_rows(*, org_id: int, now: datetime) -> int:
    """Mark the organization's overdue reservations expired (their holds are derived from
    the rows here, so no counter moves)."""
    return Reservation.objects.filter(
        organization_id=org_id, status=ReservationStatus.HELD, expires_at__lte=now
    ).update(status=ReservationStatus.EXPIRED, closed_at=now)


def held_after_expiry(*, org_id: int, now: datetime) -> Decimal:
    """Under the spend lock: expire overdue rows and return what the live ones hold (one
    statement on PostgreSQL)."""
    if connection.vendor != "postgresql":
        reservations_expire_rows(org_id=org_id, now=now)
        held = Reservation.objects.filter(
            organization_id=org_id, status=ReservationStatus.HELD
        ).aggregate(total=Sum("credits"))["total"]
        return Decimal(held or 0)
    table = Reservation._meta.db_table
    # The UPDATE and the SELECT see the same snapshot: the SELECT leaves out what expires.
    sql = (
        f"WITH e AS (UPDATE {table} SET status = 'expired', closed_at = %s "  # noqa: S608
        "WHERE organization_id = %s AND status = 'held' AND expires_at <= %s RETURNING 1) "
        f"SELECT (SELECT SUM(credits) FROM {table} WHERE organization_id = %s "
        "AND status = 'held' AND expires_at > %s), (SELECT count(*) FROM e)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, org_id, now, org_id, now])
        held, _expired = cursor.fetchone()
    return Decimal(held or 0)


def figures_expected(org: Organization, now: datetime) -> tuple[list, list, list]:
    """The state's field/value pairs, the live reservations and the hard budgets."""
    state: dict[str, object] = {}
    if not org.may_overdraw:
        balance = CreditAccount.objects.filter(organization=org).values_list("balance", flat=True)
        state["bal"] = counters.amount_encode(Decimal(balance.first() or 0))
    starts = period_starts(org, now)
    if org.monthly_token_allocation is not None and not org.overage_allowed:
        state["alloc"] = org.monthly_token_allocation
        state[f"t:{starts['month']}"] = month_to_date_tokens(org=org, at=now)
    for key_id in KeyPause.objects.filter(organization=org).values_list("api_key_id", flat=True):
        state[f"p:{key_id}"] = 1
    held: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    held_tokens, reservations = 0, []
    live = Reservation.objects.filter(organization=org, status=ReservationStatus.HELD)
    for rid, key_id, member, project_id, credits, tokens, expires in live.values_list(
        "public_id", "api_key_id", "member", "project_id", "credits", "tokens", "expires_at"
    ):
        for held_subject in reservation_subjects(
            api_key_id=key_id, member=member, project_id=project_id
        ):
            held[held_subject] += credits
        held_tokens += tokens
        value = reservation_value(credits, tokens, key_id, member, project_id)
        reservations += [rid, value, epoch_ms(expires)]
    for (dim, sub), credits in held.items():
        state[f"h:{dim}:{sub}"] = counters.amount_encode(credits)
    state["ht"] = held_tokens
    budgets = []
    tz = org_zone(org)
    for b in Budget.objects.filter(organization=org, hard_limit__isnull=False):
        dimension, subject = budget_subject(b)
        span = period_of(b.period, now=now, tz=tz)
        spent = SpendDay.objects.filter(
            organization=org,
            dimension=dimension,
            subject=subject,
            day__gte=span.first_day,
            day__lt=span.end_day,
        ).aggregate(total=Sum("credits"))["total"]
        field = f"s:{dimension}:{subject}:{b.period}:{span.first_day.isoformat()}"
        state[field] = counters.amount_encode(Decimal(spent or 0))
        assert b.hard_limit is not None
        limit = counters.amount_encode(b.hard_limit)
        budgets += [b.pk, f"{dimension}\0{subject}\0{b.period}\0{limit}"]
    pairs = [v for item in state.items() for v in item]
    return pairs, reservations, budgets


def counters_rebuild(*, org: Organization, now: datetime | None = None) -> None:
    """Build the organization's counters from the database, under its spend lock (so no
    ingestion batch is half-way), replacing whatever Redis had."""
    conn = counters.client()
    assert conn is not None
    now = now or timezone.now()
    drops = conn.get(drops_key(org.pk)) or b""
    with transaction.atomic():
        spend_lock(org.pk)
        reservations_expire_rows(org_id=org.pk, now=now)
        org.refresh_from_db()
        pairs, reservations, budgets = figures_expected(org, now)
        generation = secrets.token_hex(8)
        built = counters.REBUILD(
            conn,
            [*org_keys(org.pk), drops_key(org.pk)],
            [generation, drops, *pairs, "--", *reservations, "--", *budgets],
        )
    if not built:
        return
    _forget_refused_meanwhile(conn, org.pk, reservations)
    logger.info("usage.spend.counters_rebuilt", extra={"org": org.pk, "generation": generation})


def _forget_refused_meanwhile(conn, org_id: int, counted: list) -> None:
    """A row the rebuild read may belong to a request being refused right then, whose
    row is deleted and hold released, perhaps before the rebuild wrote it back: what the
    rebuild counted and is no longer held is released again (a second release of the
    same reservation does nothing)."""
    ids = counted[0::3]
    if not ids:
        return
    still = set(
        Reservation.objects.filter(
            organization_id=org_id, public_id__in=ids, status=ReservationStatus.HELD
        ).values_list("public_id", flat=True)
    )
    gone = [rid for rid in ids if rid not in still]
    if gone:
        counters.RELEASE(conn, org_keys(org_id)[:3], gone)


# --- Reconciliation -------------------------------------------------------------------------


def counters_drift(*, org: Organization) -> dict[str, int]:
    """Counters that differ from what the database says they should be (0 when Redis has
    none for this organization: nothing to drift)."""
    conn = counters.client()
    if conn is None:
        return {}
    now = timezone.now()
    try:
        stored = conn.hgetall(org_keys(org.pk)[0])
    except UNAVAILABLE:
        return {}
    if not stored:
        return {"spend_counter_drift": 0}
    pairs, _reservations, _budgets = figures_expected(org, now)
    expected = dict(zip(pairs[::2], pairs[1::2], strict=True))
    drift = 0
    for field, value in expected.items():
        have = stored.get(field.encode())
        if field.startswith(("h:", "s:", "bal")):
            drift += counters.amount_decode(have) != counters.amount_decode(str(value))
        else:
            drift += int(have or 0) != int(str(value))
    for field, value in stored.items():
        name = field.decode() if isinstance(field, bytes) else str(field)
        if name.startswith("h:") and name not in expected:
            drift += counters.amount_decode(value) != 0
    return {"spend_counter_drift": drift}
