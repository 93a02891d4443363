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
from collections import defaultdict
from contextvars import ContextVar, Token
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache

import psycopg
import redis
from django.db import connection

from accounts.models import APIKey, Organization
from core.calendar import org_zone
from spend import counters
from spend.models import Reservation
from spend.services.counter_keys import (
    PERIODS,
    REBUILD_ATTEMPTS,
    UNAVAILABLE,
    after_commit,
    counters_enabled,
    epoch_ms,
    org_keys,
    period_starts,
)
from spend.services.counters_rebuild import counters_rebuild, reservations_expire_rows
from spend.services.holds import ORG
from usage.models import field_column

logger = logging.getLogger(__name__)


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
        epoch_ms(now),
        reservation.public_id,
        counters.amount_encode(reservation.credits),
        reservation.tokens,
        key.pk,
        reservation.member,
        epoch_ms(reservation.expires_at),
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
    keys = [*org_keys(org.pk), *rate_keys, *(project_rate_keys or rate_keys)]
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
        counters.RELEASE(conn, org_keys(reservation.organization_id)[:3], [reservation.public_id])


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
        keys, args = org_keys(org.pk)[:3], [epoch_ms(now), counters.amount_encode(need), *own]
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
                org_keys(self.org_id or 0)[:1],
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
        counters.ADD(conn, org_keys(org_id)[:1], args)
    except UNAVAILABLE as exc:  # the next rebuild reads the database
        logger.warning("usage.spend.counters_unavailable", extra={"org": org_id, "error": str(exc)})


def counters_release_on_commit(*, org_id: int, reservation_ids: list[str]) -> None:
    """After the settling transaction commits: the settled reservations' holds come off."""
    conn = counters.client()
    if conn is None or not reservation_ids:
        return

    def release() -> None:
        try:
            counters.RELEASE(conn, org_keys(org_id)[:3], reservation_ids)
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
    state = org_keys(org_id)[0]
    if not conn.hexists(state, "gen"):
        return None
    return counters.amount_decode(conn.hget(state, "h:o:"))
