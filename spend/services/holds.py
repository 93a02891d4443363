"""Spend controls' ledger of holds and charges: the organization's spend lock, the
counters every budget reads, reservations expiring, and what ingestion settles.

Two tables carry the figures (spend/models.py):
- SpendDay: credits and tokens charged per local day and subject (the organization,
  an API key, a member, a project), written in the ingestion transaction that charges them;
- SpendHold: what live reservations hold per subject. The organization's own row is
  also the lock: `authorize` and ingestion both take it (an upsert that locks the row)
  before they read any figure, so a check and the write it leads to are one step.

A budget's spent is the sum of its subject's SpendDay rows in the current period; its
reserved is the subject's hold (a live reservation counts against whichever period is
current: it is money about to be spent now). Both are exact decimals.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import F, Min, Sum
from django.db.models.functions import Round
from django.utils import timezone

from accounts.models import Organization
from billing.models import CreditAccount
from core.calendar import org_zone
from spend import counters
from spend.models import (
    Budget,
    BudgetScope,
    KeyPause,
    Reservation,
    ReservationStatus,
    SpendDay,
    SpendHold,
)
from usage.models import field_column

ORG, KEY, MEMBER, PROJECT = "o", "k", "m", "p"
Subject = tuple[str, str]  # (dimension, subject)


def reservation_subjects(
    *, api_key_id: int | None, member: str, project_id: int | None = None
) -> list[Subject]:
    """The counters a charge by this key (of this project) and member moves: the
    organization's always."""
    subjects = [(ORG, "")]
    if api_key_id is not None:
        subjects.append((KEY, str(api_key_id)))
    if member:
        subjects.append((MEMBER, member))
    if project_id is not None:
        subjects.append((PROJECT, str(project_id)))
    return subjects


def budget_subject(budget: Budget) -> Subject:
    """The counter a budget reads: its scope's dimension and subject."""
    subjects: dict[str, Subject] = {
        BudgetScope.ORGANIZATION: (ORG, ""),
        BudgetScope.API_KEY: (KEY, str(budget.api_key_id)),
        BudgetScope.MEMBER: (MEMBER, budget.member),
        BudgetScope.PROJECT: (PROJECT, str(budget.project_id)),
    }
    return subjects[budget.scope]


def _upsert_sql(table: str, keys: list[str], returning: bool) -> str:
    columns = ["organization_id", *keys, "credits", "tokens"]
    conflict = ", ".join(["organization_id", *keys])
    # Table and column names are this module's constants; values go as parameters.
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {{rows}} "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO UPDATE SET "
        # ROUND to the column's scale: SQLite adds decimals as floats.
        f"credits = ROUND({table}.credits + EXCLUDED.credits, 10), "
        f"tokens = {table}.tokens + EXCLUDED.tokens"
    )
    if returning:
        sql += " RETURNING credits, tokens"
    return sql


def _increment(table: str, keys: list[str], rows: list[tuple]) -> list[tuple]:
    """Add (credits, tokens) to each row's counters, making missing rows: one statement."""
    if not rows:
        return []
    width = len(rows[0])
    template = "(" + ", ".join(["%s"] * width) + ")"
    sql = _upsert_sql(table, keys, returning=len(rows) == 1).replace(
        "{rows}", ", ".join([template] * len(rows))
    )
    params = [value for row in rows for value in row]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if len(rows) == 1 else []


def holds_add(*, org_id: int, amounts: dict[Subject, tuple[Decimal, int]]) -> None:
    """Add (credits, tokens) to the holds of these subjects (negative to release: an
    update, the row exists since its reservation made it; an insert of a negative row
    would fail the table's check before its conflict is seen)."""
    adds = [(org_id, d, s, c, t) for (d, s), (c, t) in amounts.items() if c > 0 or t > 0]
    _increment(SpendHold._meta.db_table, ["dimension", "subject"], adds)
    for (d, s), (c, t) in amounts.items():
        if c < 0 or t < 0:
            SpendHold.objects.filter(organization_id=org_id, dimension=d, subject=s).update(
                credits=Round(F("credits") + c, 10), tokens=F("tokens") + t
            )


def holds_refresh(*, org_id: int) -> tuple[Decimal, int]:
    """Set the organization's holds to what its live reservations hold (under its spend
    lock; with authorize on Redis counters the rows are written without touching the
    holds). Returns the organization's own (credits, tokens)."""
    expected: dict[Subject, list] = defaultdict(lambda: [Decimal(0), 0])
    live = Reservation.objects.filter(organization_id=org_id, status=ReservationStatus.HELD)
    for key_id, member, project_id, credits, tokens in live.values_list(
        "api_key_id", "member", "project_id", "credits", "tokens"
    ):
        for subject in reservation_subjects(
            api_key_id=key_id, member=member, project_id=project_id
        ):
            expected[subject][0] += credits
            expected[subject][1] += tokens
    SpendHold.objects.filter(organization_id=org_id).exclude(credits=0, tokens=0).update(
        credits=0, tokens=0
    )
    rows = [(org_id, d, s, c, t) for (d, s), (c, t) in expected.items() if c > 0 or t > 0]
    _increment(SpendHold._meta.db_table, ["dimension", "subject"], rows)
    credits, tokens = expected.get((ORG, ""), (Decimal(0), 0))
    return Decimal(credits), int(tokens)


def spend_days_add(*, org_id: int, amounts: dict[tuple[str, str, object], tuple]) -> None:
    rows = [(org_id, d, s, day, c, t) for (d, s, day), (c, t) in amounts.items() if c or t]
    _increment(SpendDay._meta.db_table, ["dimension", "subject", "day"], rows)


def spend_lock(org_id: int) -> tuple[Decimal, int]:
    """Lock the organization's spend (its hold row, made if missing) until the transaction
    ends; returns what all its live reservations hold (credits, tokens)."""
    rows = _increment(
        SpendHold._meta.db_table,
        ["dimension", "subject"],
        [(org_id, ORG, "", Decimal(0), 0)],
    )
    credits, tokens = rows[0]
    return Decimal(credits), int(tokens)


@dataclass(frozen=True)
class LockedSpend:
    """What authorize reads the moment it takes the spend lock."""

    held_credits: Decimal
    held_tokens: int
    balance: Decimal
    paused: bool
    next_expiry: datetime | None


def _authorize_lock_sql() -> str:
    hold = SpendHold._meta.db_table
    return (
        f"INSERT INTO {hold} (organization_id, dimension, subject, credits, tokens) "  # noqa: S608
        "SELECT %s, 'o', '', 0, 0 FROM (SELECT set_config('synchronous_commit', %s, true)) AS c "
        f"ON CONFLICT (organization_id, dimension, subject) DO UPDATE SET credits = {hold}.credits "
        "RETURNING credits, tokens"
    )


def _after_lock_sql() -> str:
    return (
        f"SELECT (SELECT balance FROM {CreditAccount._meta.db_table} "  # noqa: S608
        "WHERE organization_id = %s), "
        f"EXISTS (SELECT 1 FROM {KeyPause._meta.db_table} WHERE api_key_id = %s), "
        f"(SELECT min(expires_at) FROM {Reservation._meta.db_table} "
        "WHERE organization_id = %s AND status = 'held')"
    )


def spend_lock_for_authorize(*, org_id: int, key_id: int, async_commit: bool) -> LockedSpend:
    """Take the spend lock, then read the holds, the balance, whether the key is paused
    and the next reservation to expire.

    The figures are read by a statement that starts once the lock is held: under READ
    COMMITTED a statement sees what was committed when it began, so figures read in the
    locking statement itself (say in its RETURNING) would be those from before its lock
    wait, missing what the lock's previous holder (an ingestion debiting the balance)
    committed meanwhile. The holds come back from the locking upsert, which sees the row's
    latest version.

    async_commit (PostgreSQL): this transaction's commit does not wait for its WAL flush
    (synchronous_commit off, for this transaction only): see authorize's docstring."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_authorize_lock_sql(), [org_id, "off" if async_commit else "on"])
            credits, tokens = cursor.fetchone()
            cursor.execute(_after_lock_sql(), [org_id, key_id, org_id])
            balance, paused, next_expiry = cursor.fetchone()
        return LockedSpend(
            Decimal(credits), int(tokens), Decimal(balance or 0), bool(paused), next_expiry
        )
    credits, tokens = spend_lock(org_id)
    balance = (
        CreditAccount.objects.filter(organization_id=org_id)
        .values_list("balance", flat=True)
        .first()
    )
    return LockedSpend(
        credits,
        tokens,
        Decimal(balance or 0),
        KeyPause.objects.filter(api_key_id=key_id).exists(),
        Reservation.objects.filter(organization_id=org_id, status=ReservationStatus.HELD).aggregate(
            first=Min("expires_at")
        )["first"],
    )


def reservations_expire(*, org_id: int, now: datetime | None = None) -> int:
    """Expire the organization's overdue reservations and release what they held.
    Call under spend_lock. Returns how many expired."""
    now = now or timezone.now()
    overdue = list(
        Reservation.objects.filter(
            organization_id=org_id, status=ReservationStatus.HELD, expires_at__lte=now
        ).values_list("pk", "api_key_id", "member", "project_id", "credits", "tokens")
    )
    if not overdue:
        return 0
    release: dict[Subject, list] = defaultdict(lambda: [Decimal(0), 0])
    for _pk, key_id, member, project_id, credits, tokens in overdue:
        for subject in reservation_subjects(
            api_key_id=key_id, member=member, project_id=project_id
        ):
            release[subject][0] -= credits
            release[subject][1] -= tokens
    Reservation.objects.filter(pk__in=[row[0] for row in overdue]).update(
        status=ReservationStatus.EXPIRED, closed_at=now
    )
    if counters.enabled():  # the holds are the live rows' (authorize writes only rows)
        holds_refresh(org_id=org_id)
    else:
        holds_add(org_id=org_id, amounts={s: (c, t) for s, (c, t) in release.items()})
    return len(overdue)


def spent_in_days(*, org: Organization, subject: Subject, first_day, end_day) -> Decimal:
    total = SpendDay.objects.filter(
        organization=org,
        dimension=subject[0],
        subject=subject[1],
        day__gte=first_day,
        day__lt=end_day,
    ).aggregate(total=Sum("credits"))["total"]
    return Decimal(total or 0)


def charges_by_subject(
    charges: Iterable[tuple[int | None, str, Decimal, int, int | None]], *, day
) -> dict[tuple[str, str, object], tuple[Decimal, int]]:
    """(api_key_id, member, credits, tokens, project_id) charges summed per subject and day."""
    sums: dict[tuple[str, str, object], list] = defaultdict(lambda: [Decimal(0), 0])
    for key_id, member, credits, tokens, project_id in charges:
        for dimension, subject in reservation_subjects(
            api_key_id=key_id, member=member, project_id=project_id
        ):
            sums[(dimension, subject, day)][0] += credits
            sums[(dimension, subject, day)][1] += tokens
    return {k: (c, t) for k, (c, t) in sums.items()}


def charge_day(org: Organization, at: datetime):
    return at.astimezone(org_zone(org)).date()


def reservation_hold(*, reservation: Reservation) -> None:
    """Insert the reservation and add its worst case to its subjects' holds (one statement
    on PostgreSQL: a data-modifying WITH, under the caller's spend lock)."""
    subjects = reservation_subjects(
        api_key_id=reservation.api_key_id,
        member=reservation.member,
        project_id=reservation.project_id,
    )
    amounts = {s: (reservation.credits, reservation.tokens) for s in subjects}
    rows = [(d, s, c, t) for (d, s), (c, t) in amounts.items() if c > 0 or t > 0]
    if connection.vendor != "postgresql" or not rows:
        reservation.save(force_insert=True)
        holds_add(org_id=reservation.organization_id, amounts=amounts)
        return
    quote = connection.ops.quote_name
    fields = [f for f in Reservation._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(getattr(reservation, f.attname), connection) for f in fields]
    hold = SpendHold._meta.db_table
    columns = ", ".join(quote(field_column(f)) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    hold_values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
    # Table and column names come from the models; every value is a parameter.
    sql = (
        f"WITH r AS (INSERT INTO {Reservation._meta.db_table} ({columns}) "  # noqa: S608
        f"VALUES ({placeholders}) RETURNING id) "
        f"INSERT INTO {hold} (organization_id, dimension, subject, credits, tokens) "
        f"VALUES {hold_values} ON CONFLICT (organization_id, dimension, subject) DO UPDATE SET "
        f"credits = ROUND({hold}.credits + EXCLUDED.credits, 10), "
        f"tokens = {hold}.tokens + EXCLUDED.tokens RETURNING (SELECT id FROM r)"
    )
    params = values + [v for d, s, c, t in rows for v in (reservation.organization_id, d, s, c, t)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        reservation.pk = cursor.fetchone()[0]
    reservation._state.adding = False
