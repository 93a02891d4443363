"""Spend controls' counters in Redis: authorize decides in one script over them; the
database stays the system of record and the counters are rebuilt from it
(docs/spend-controls.md).

- A reservation's row is written first (one INSERT, no lock), then the script decides and
  places its hold in Redis; a refused row is deleted. So every hold Redis counts has its
  row, and a rebuild (which reads the rows) never forgets money that is held.
- Ingestion moves the counters inside its transaction, before its commit, by what it
  charges (spent, tokens, the balance's usage debit), and takes settled reservations'
  holds off after its commit: in between both count, never neither. A no-overdraft batch
  takes its credits from the balance in one script checked against what is held
  (`BalanceTake`), the way authorize places a hold.
- Whatever else changes a figure (a budget, a pause, a payment, the organization's
  terms) drops the organization's counters after its commit; the next authorize
  rebuilds them under the spend lock.
- No counters (a new organization, a Redis restarted or flushed): the script answers
  "rebuild" and nothing is allowed until they are built. Redis unreachable: 402
  `spend_controls_unavailable`, never an unchecked allowance.
"""

import logging
import secrets
from collections import defaultdict
from contextvars import ContextVar, Token
from datetime import date, datetime, time, tzinfo
from decimal import Decimal
from functools import cache, lru_cache

import psycopg
import redis
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import APIKey, Organization
from billing.models import CreditAccount
from core.calendar import org_zone
from spend import counters
from spend.models import Budget, KeyPause, Reservation, ReservationStatus, SpendDay
from spend.services.holds import ORG, budget_subject, reservation_subjects, spend_lock
from usage.models import field_column
from usage.selectors.records import month_to_date_tokens
from usage.windows import period_of

logger = logging.getLogger(__name__)

PERIODS = ("day", "week", "month")
REBUILD_ATTEMPTS = 3
UNAVAILABLE = (redis.exceptions.RedisError, OSError)


def counters_enabled() -> bool:
    return counters.enabled()


def _keys(org_id: int) -> list[str]:
    tag = counters.org_tag(org_id)
    return [f"{tag}:s", f"{tag}:r", f"{tag}:x", f"{tag}:b"]


def _drops(org_id: int) -> str:
    return f"{counters.org_tag(org_id)}:d"


def period_starts(org: Organization, at: datetime) -> dict[str, str]:
    """The first day of the day, week and month `at` falls in, on the org's calendar (the
    caller must not change the dict: it is shared)."""
    tz = org_zone(org)
    return _period_starts_of(at.astimezone(tz).date(), tz)


@lru_cache(maxsize=1024)
def _period_starts_of(today: date, tz: tzinfo) -> dict[str, str]:
    # Worked out once per local day and zone: each period_of finds two local midnights,
    # the greater part of authorize's own arithmetic.
    noon = datetime.combine(today, time(12), tzinfo=tz)
    return {p: period_of(p, now=noon, tz=tz).first_day.isoformat() for p in PERIODS}


def reservation_value(
    credits: Decimal, tokens: int, key_id: int, member: str, project_id: int | None
) -> str:
    """A reservation as the scripts keep it: credits, tokens, key, member, project."""
    project = "" if project_id is None else project_id
    return f"{counters.amount_encode(credits)}\0{tokens}\0{key_id}\0{member}\0{project}"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


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


def _figures(org: Organization, now: datetime) -> tuple[list, list, list]:
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
        reservations += [rid, value, _ms(expires)]
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
    drops = conn.get(_drops(org.pk)) or b""
    with transaction.atomic():
        spend_lock(org.pk)
        reservations_expire_rows(org_id=org.pk, now=now)
        org.refresh_from_db()
        pairs, reservations, budgets = _figures(org, now)
        generation = secrets.token_hex(8)
        built = counters.REBUILD(
            conn,
            [*_keys(org.pk), _drops(org.pk)],
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
        counters.RELEASE(conn, _keys(org_id)[:3], gone)


def counters_drop(*, org_id: int) -> None:
    """Forget the organization's counters (the next authorize rebuilds them)."""
    conn = counters.client()
    if conn is None:
        return
    try:
        pipe = conn.pipeline(transaction=True)
        pipe.incr(_drops(org_id))
        pipe.delete(_keys(org_id)[0])
        pipe.execute()
    except UNAVAILABLE as exc:
        logger.warning("usage.spend.counters_drop_failed", extra={"org": org_id, "error": str(exc)})


def after_commit(run) -> None:
    """Run once the current transaction commits (now, outside one)."""
    transaction.on_commit(run)


def counters_drop_on_commit(org_id: int) -> None:
    """Drop the counters now (an authorize meanwhile rebuilds from what is committed) and
    again once the change commits (so nothing rebuilt before it outlives it)."""
    counters_drop(org_id=org_id)
    after_commit(lambda: counters_drop(org_id=org_id))


# The columns authorize writes (the others start NULL), in the order of the values below.
_INSERT_FIELDS = (
    "organization_id", "public_id", "api_key_id", "project_id", "member", "endpoint",
    "model_id", "credits", "tokens", "status", "created_at", "expires_at", "record_id",
)  # fmt: skip


# Past any count a statement reaches: only statements executed with prepare=True are.
_PREPARE_ASKED_ONLY = 2**62


@cache
def _insert_sql() -> str:
    """The reservation's INSERT, in its own transaction that does not wait for the WAL
    flush (table and column names from the model; every value a parameter)."""
    quote = connection.ops.quote_name
    fields = {f.attname: f for f in Reservation._meta.concrete_fields}
    columns = ", ".join(quote(field_column(fields[name])) for name in _INSERT_FIELDS)
    placeholders = ", ".join(["%s"] * len(_INSERT_FIELDS))
    return (
        f"INSERT INTO {quote(Reservation._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT {placeholders} FROM (SELECT set_config('synchronous_commit', 'off', true)) c "
        "RETURNING id"
    )


def _reservation_insert(reservation: Reservation) -> None:
    """One INSERT, its own transaction, not waiting for the WAL flush on PostgreSQL.

    On PostgreSQL it is a prepared statement (bound on the server, planned once per
    connection): the statement the gateway's hot path runs on every authorize, whose
    parsing and planning were half of PostgreSQL's time per call (docs/benchmarks.md)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        reservation.save(force_insert=True)
        return
    values = [getattr(reservation, name) for name in _INSERT_FIELDS]
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Django turns preparing off for its cursors, which bind on the client and never
        # prepare anyway; a server-binding cursor prepares only what it is asked to.
        raw.prepare_threshold = _PREPARE_ASKED_ONLY
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(_insert_sql(), values, prepare=True)
        row = cursor.fetchone()
    assert row is not None
    reservation.pk = row[0]
    reservation._state.adding = False


def counters_authorize(
    *,
    key: APIKey,
    reservation: Reservation,
    starts: dict[str, str],
    rpm: int,
    tpm: int,
    window_ttl: int,
    rate_keys: tuple[str, str],
    now: datetime,
    project_limits: tuple[int, int] = (0, 0),
    project_rate_keys: tuple[str, str] | None = None,
) -> list:
    """Write the reservation's row, then run the decision. Returns the script's answer
    (verdict, detail, requests, tokens used, the project's requests and tokens used); a
    refused reservation's row is gone again. Raises redis errors (the row is gone then
    too)."""
    conn = counters.client()
    assert conn is not None
    org = key.organization
    _reservation_insert(reservation)
    args = [
        _ms(now),
        reservation.public_id,
        counters.amount_encode(reservation.credits),
        reservation.tokens,
        key.pk,
        reservation.member,
        _ms(reservation.expires_at),
        starts["day"],
        starts["week"],
        starts["month"],
        rpm,
        tpm,
        window_ttl,
        "" if reservation.project_id is None else reservation.project_id,
        project_limits[0],
        project_limits[1],
    ]
    # Without project limits the project's counters are not touched (any names will do).
    keys = [*_keys(org.pk), *rate_keys, *(project_rate_keys or rate_keys)]
    try:
        answer = counters.AUTHORIZE(conn, keys, args)
        for _attempt in range(REBUILD_ATTEMPTS):
            if answer[0] != b"rebuild":
                break
            counters_rebuild(org=org, now=now)
            answer = counters.AUTHORIZE(conn, keys, args)
    except BaseException:
        _reservation_forget(reservation, conn=None)
        raise
    verdict = answer[0].decode()
    if verdict == "rebuild":  # dropped again and again meanwhile: refuse, never guess
        _reservation_forget(reservation, conn=conn)
        raise redis.exceptions.RedisError("the spend counters could not be rebuilt")
    if verdict != "ok":
        _reservation_forget(reservation, conn=conn)
    if answer[4]:
        reservations_expire_rows(org_id=org.pk, now=now)
    detail = answer[1].decode() if answer[1] else ""
    return [verdict, detail, int(answer[2]), int(answer[3]), int(answer[5]), int(answer[6])]


def _reservation_forget(reservation: Reservation, *, conn: redis.Redis | None) -> None:
    """A refused reservation: its row goes, and its hold if a rebuild counted the row."""
    Reservation.objects.filter(pk=reservation.pk).delete()
    if conn is not None:
        counters.RELEASE(conn, _keys(reservation.organization_id)[:3], [reservation.public_id])


# --- What ingestion moves --------------------------------------------------------------------

# Organizations whose running batch took its credits from the counters' balance already:
# its usage debit must not move the balance a second time.
_balance_taken: ContextVar[frozenset[int]] = ContextVar("balance_taken", default=frozenset())


def balance_taken(org_id: int) -> bool:
    """Whether the running batch of this organization took its credits through the
    counters already (its usage debit must not move their balance again)."""
    return org_id in _balance_taken.get()


class BalanceTake:
    """A no-overdraft batch's credits, taken from the counters' balance in the same
    script that checks them against what is held (docs/spend-controls.md).

    Order: `take` (under the spend lock, before the batch decides) debits the most the
    batch may need; `keep` gives back what it did not accept, before the write; the
    usage debit then leaves the counters' balance alone. If the batch's transaction fails,
    `give_back` returns what was kept, unless the counters were rebuilt since (the
    rebuild read the database's balance). A process that dies in between leaves the
    credits taken, which refuses sooner until the next rebuild, never allows more."""

    def __init__(self) -> None:
        self.org_id: int | None = None
        self.generation = b""
        self.credits = Decimal(0)
        self._token: Token[frozenset[int]] | None = None

    def take(
        self, *, org: Organization, need: Decimal, own: list[str], now: datetime
    ) -> Decimal | None:
        """Credits granted (at most `need`), or None when the counters are not built,
        keep no balance for the organization or cannot be reached (the database's figure
        decides: authorize answers 402 while Redis is unreachable)."""
        conn = counters.client()
        if conn is None or not counters_enabled():
            return None
        keys, args = _keys(org.pk)[:3], [_ms(now), counters.amount_encode(need), *own]
        try:
            answer = counters.TAKE(conn, keys, args)
        except UNAVAILABLE as exc:
            logger.warning(
                "usage.spend.counters_unavailable", extra={"org": org.pk, "error": str(exc)}
            )
            return None
        if answer[0] != b"ok":
            # No counters: none can be built before this batch commits (a rebuild takes
            # the spend lock the batch holds), so no authorization can count on these
            # credits meanwhile and the database's figure is exact.
            return None
        self.org_id, self.generation = org.pk, answer[2]
        self.credits = counters.amount_decode(answer[1])
        self._token = _balance_taken.set(_balance_taken.get() | {org.pk})
        return self.credits

    def keep(self, credits: Decimal) -> None:
        """The batch accepted `credits` of what it took: the rest goes back now."""
        if self.org_id is None:
            return
        rest, self.credits = self.credits - credits, credits
        self._give(rest)

    def give_back(self) -> None:
        """The batch's transaction failed: what it kept goes back too."""
        if self.org_id is not None:
            rest, self.credits = self.credits, Decimal(0)
            self._give(rest)

    def close(self) -> None:
        if self._token is not None:
            _balance_taken.reset(self._token)
            self._token = None

    def _give(self, credits: Decimal) -> None:
        conn = counters.client()
        if conn is None or credits <= 0:
            return
        try:
            counters.GIVE(
                conn,
                _keys(self.org_id or 0)[:1],
                [self.generation, counters.amount_encode(credits)],
            )
        except UNAVAILABLE as exc:  # taken until the next rebuild: refuses sooner, no more
            logger.warning(
                "usage.spend.counters_unavailable", extra={"org": self.org_id, "error": str(exc)}
            )


def counters_charge(
    *, org: Organization, amounts: dict[tuple[str, str, object], tuple[Decimal, int]]
) -> None:
    """Inside the charging transaction, before its commit: spent per subject and period,
    and the organization's tokens of the month (a rollback leaves them counted, which
    only refuses sooner until the next rebuild)."""
    conn = counters.client()
    if conn is None or not amounts:
        return
    tz = org_zone(org)
    fields: dict[str, Decimal] = defaultdict(Decimal)
    tokens: dict[str, int] = defaultdict(int)
    for (dimension, subject, day), (credits, used) in amounts.items():
        assert isinstance(day, date)
        starts = period_starts(org, datetime.combine(day, time(12), tzinfo=tz))
        for period in PERIODS:
            fields[f"s:{dimension}:{subject}:{period}:{starts[period]}"] += credits
        if dimension == ORG and used:
            tokens[f"t:{starts['month']}"] += used
    args: list = []
    for field, credits in fields.items():
        args += [field, counters.amount_encode(credits)]
    for field, used in tokens.items():
        args += [field, used]
    _add(conn, org.pk, args)


def counters_balance_move(*, org_id: int, amount: Decimal) -> None:
    """A usage debit, inside its transaction: the balance the script sees moves now."""
    conn = counters.client()
    if conn is not None and amount:
        _add(conn, org_id, ["bal", counters.amount_encode(amount)])


def _add(conn: redis.Redis, org_id: int, args: list) -> None:
    try:
        counters.ADD(conn, _keys(org_id)[:1], args)
    except UNAVAILABLE as exc:  # the next rebuild reads the database
        logger.warning("usage.spend.counters_unavailable", extra={"org": org_id, "error": str(exc)})


def counters_release_on_commit(*, org_id: int, reservation_ids: list[str]) -> None:
    """After the settling transaction commits: the settled reservations' holds come off."""
    conn = counters.client()
    if conn is None or not reservation_ids:
        return

    def release() -> None:
        try:
            counters.RELEASE(conn, _keys(org_id)[:3], reservation_ids)
        except UNAVAILABLE as exc:
            logger.warning(
                "usage.spend.counters_unavailable", extra={"org": org_id, "error": str(exc)}
            )

    after_commit(release)


def counters_org_hold(*, org_id: int) -> Decimal | None:
    """What Redis' counters hold for the whole organization (None: none built)."""
    conn = counters.client()
    if conn is None:
        return None
    state = _keys(org_id)[0]
    if not conn.hexists(state, "gen"):
        return None
    return counters.amount_decode(conn.hget(state, "h:o:"))


# --- Reconciliation -------------------------------------------------------------------------


def counters_drift(*, org: Organization) -> dict[str, int]:
    """Counters that differ from what the database says they should be (0 when Redis has
    none for this organization: nothing to drift)."""
    conn = counters.client()
    if conn is None:
        return {}
    now = timezone.now()
    try:
        stored = conn.hgetall(_keys(org.pk)[0])
    except UNAVAILABLE:
        return {}
    if not stored:
        return {"spend_counter_drift": 0}
    pairs, _reservations, _budgets = _figures(org, now)
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
