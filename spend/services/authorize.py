"""The gateway's pre-request check: `request_authorize` estimates a request's worst-case
cost and, under the organization's spend lock, checks the key's pause, every hard budget
that applies, the balance (organizations that may not overdraw) and the free tier's
monthly allocation, then holds the cost in a reservation until a usage record settles it
or it expires.

The guarantee: every allowed authorization leaves spent + reserved <= hard level for each
budget that applies, and a settlement moves its reservation's amount from reserved to
spent at the real cost. So settled spend passes a hard level only by what usage records
charged without a reservation (or beyond theirs), never through authorized requests whose
records stay within their worst case.

Durability: on PostgreSQL the authorization's commit does not wait for its WAL flush
(synchronous_commit off for that one transaction; SPEND_AUTHORIZE_ASYNC_COMMIT=False turns
it off). A database crash can then forget the last fraction of a second of reservations
(never half of one: the reservation and its holds are one transaction); the records that
would have settled them arrive as unreserved usage, are stored, and are flagged over cap if
they pass a hard level. Everything else about the guarantee holds.

Requests and tokens per minute are counted in the cache (spend/ratelimit.py) before the
lock, so a refused rate never waits on the database (a paused key over its rate hears 429
first). If the cache is unreachable the
rate limits fail open (as everywhere in the API: `X-RateLimit-Status: unavailable`);
budgets, balance and allocation never depend on the cache, so hard levels stay exact.
"""

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import APIKey
from billing.models import PriceModel
from billing.money import credits_round
from core.calendar import next_month, org_zone
from spend.counters import amount_decode
from spend.estimate import Estimate, request_cost_estimate
from spend.models import Budget, BudgetScope, Reservation, ReservationStatus, SpendDay, SpendHold
from spend.ratelimit import (
    WINDOW_SECONDS,
    Quota,
    RateState,
    limits_for,
    project_limits,
    rate_keys,
    rate_window,
    ratelimit_authorize,
    ratelimit_authorize_peek,
    ratelimit_authorize_project,
)
from spend.services.counter_keys import UNAVAILABLE, counters_enabled, period_starts
from spend.services.holds import (
    KEY,
    MEMBER,
    ORG,
    PROJECT,
    budget_subject,
    reservation_hold,
    reservations_expire,
    spend_lock,
    spend_lock_for_authorize,
)
from spend.services.spend_counters import counters_authorize
from usage.members import key_owner, member_attributed
from usage.selectors.records import month_to_date_tokens
from usage.windows import period_of

logger = logging.getLogger(__name__)

RESERVATION_PREFIX = "rsv_"
_RESERVATION_COLUMNS = tuple(f.attname for f in Reservation._meta.concrete_fields)


def reservation_ttl() -> timedelta:
    return timedelta(seconds=settings.SPEND_RESERVATION_SECONDS)


@dataclass
class Verdict:
    allowed: bool
    status: int = 200
    reason: str = ""
    limit: object = None
    retry_after: int | None = None
    estimate: Estimate | None = None
    reservation: Reservation | None = None
    rate: RateState | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        if self.allowed:
            assert self.estimate is not None
            return {
                "allowed": True,
                "reservation": self.reservation.public_id if self.reservation else None,
                "estimated_cost": format(self.estimate.estimated_cost.normalize(), "f"),
                "expires_at": int(self.reservation.expires_at.timestamp())
                if self.reservation
                else None,
            }
        return {
            "allowed": False,
            "reason": self.reason,
            "limit": self.limit,
            "retry_after": self.retry_after,
            **self.extra,
        }


def reservation_needed(estimate: Estimate) -> bool:
    """Whether an allowed request's worst case is worth holding: one that costs nothing
    and counts no tokens holds nothing, so no reservation is stored (the answer's
    reservation is null and the record comes unreserved, flagged by nothing)."""
    return estimate.estimated_cost > 0 or estimate.total_tokens > 0


def _refuse(status: int, reason: str, limit: object, retry_after: int | None, **extra) -> Verdict:
    return Verdict(False, status, reason, limit, retry_after, extra=extra)


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, int((moment - now).total_seconds() + 0.999))


def applicable_budgets(
    *, org_id: int, api_key_id: int | None, member: str, project_id: int | None = None
) -> list[Budget]:
    """The organization's budgets, the key's, the member's and the key's project's."""
    match = Q(scope=BudgetScope.ORGANIZATION)
    if api_key_id is not None:
        match |= Q(scope=BudgetScope.API_KEY, api_key_id=api_key_id)
    if member:
        match |= Q(scope=BudgetScope.MEMBER, member=member)
    if project_id is not None:
        match |= Q(scope=BudgetScope.PROJECT, project_id=project_id)
    return list(Budget.objects.filter(match, organization_id=org_id))


def budgets_spent_and_held(
    *, org, budgets: list[Budget], now: datetime, org_hold: Decimal | None = None
) -> dict[int, tuple[Decimal, Decimal]]:
    """(spent in the current period, held by live reservations) for each budget: one
    query (a UNION ALL of one sum per budget and one hold per subject)."""
    if not budgets:
        return {}
    tz = org_zone(org)
    parts, params = [], []
    days, holds = SpendDay._meta.db_table, SpendHold._meta.db_table
    for b in budgets:
        dimension, subject = budget_subject(b)
        p = period_of(b.period, now=now, tz=tz)
        parts.append(
            f"SELECT %s, SUM(credits) FROM {days} WHERE organization_id = %s "  # noqa: S608
            "AND dimension = %s AND subject = %s AND day >= %s AND day < %s"
        )
        params += [f"b{b.pk}", org.pk, dimension, subject, p.first_day, p.end_day]
    rows = Reservation._meta.db_table
    on_counters = counters_enabled()
    for dimension, subject in {budget_subject(b) for b in budgets}:
        if on_counters:
            # Reservations are written without moving the holds: sum the live rows.
            match = {
                ORG: "",
                KEY: " AND api_key_id = %s",
                MEMBER: " AND member = %s",
                PROJECT: " AND project_id = %s",
            }
            parts.append(
                f"SELECT %s, SUM(credits) FROM {rows} WHERE organization_id = %s "  # noqa: S608
                f"AND status = 'held'{match[dimension]}"
            )
            params += [f"h{dimension}:{subject}", org.pk]
            if dimension in (KEY, PROJECT):
                params.append(int(subject))
            elif dimension == MEMBER:
                params.append(subject)
            continue
        parts.append(
            f"SELECT %s, credits FROM {holds} WHERE organization_id = %s "  # noqa: S608
            "AND dimension = %s AND subject = %s"
        )
        params += [f"h{dimension}:{subject}", org.pk, dimension, subject]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        # SQLite sums decimals as floats: back to the ledger's scale.
        found = {k: credits_round(Decimal(str(v))) for k, v in cursor.fetchall() if v is not None}
    if org_hold is not None:
        found[f"h{ORG}:"] = org_hold
    zero = Decimal(0)
    return {
        b.pk: (
            found.get(f"b{b.pk}", zero),
            found.get("h{}:{}".format(*budget_subject(b)), zero),
        )
        for b in budgets
    }


def _money_check(
    *, key: APIKey, budgets: list[Budget], estimate: Estimate, now: datetime
) -> tuple[Verdict | None, Decimal, int]:
    """Under the spend lock: the first money refusal, or None. Returns the org's hold too.
    `budgets` (the hard ones that apply) are read before the lock: an authorization is
    ordered at that read against concurrent budget changes, and the lock is held shorter."""
    org = key.organization
    locked = spend_lock_for_authorize(
        org_id=org.pk,
        key_id=key.pk,
        async_commit=settings.SPEND_AUTHORIZE_ASYNC_COMMIT,
    )
    held_credits, held_tokens = locked.held_credits, locked.held_tokens
    if locked.paused:
        return _refuse(402, "key_paused", None, None), held_credits, held_tokens
    if locked.next_expiry is not None and locked.next_expiry <= now:
        reservations_expire(org_id=org.pk, now=now)
        held_credits, held_tokens = spend_lock(org.pk)
    cost = estimate.estimated_cost
    figures = budgets_spent_and_held(org=org, budgets=budgets, now=now, org_hold=held_credits)
    for budget in budgets:
        spent, held = figures[budget.pk]
        assert budget.hard_limit is not None
        if spent + held + cost > budget.hard_limit:
            return _budget_refusal(budget, org, now), held_credits, held_tokens
    if not org.may_overdraw:
        available = locked.balance - held_credits
        if available < cost:
            return _balance_refusal(available), held_credits, held_tokens
    allocation = org.monthly_token_allocation
    if allocation is not None and not org.overage_allowed:
        used = month_to_date_tokens(org=org, at=now)
        if used + held_tokens + estimate.total_tokens > allocation:
            return _allocation_refusal(allocation, org, now), held_credits, held_tokens
    return None, held_credits, held_tokens


def _budget_refusal(budget: Budget, org, now: datetime) -> Verdict:
    assert budget.hard_limit is not None
    resets = period_of(budget.period, now=now, tz=org_zone(org)).resets_at
    return _refuse(
        402,
        "budget_exceeded",
        format(budget.hard_limit.normalize(), "f"),
        _seconds_until(resets, now),
        budget=budget.pk,
        scope=budget.scope,
        period=budget.period,
    )


def _balance_refusal(available: Decimal) -> Verdict:
    return _refuse(
        402, "insufficient_balance", format(max(available, Decimal(0)).normalize(), "f"), None
    )


def _allocation_refusal(allocation: int, org, now: datetime) -> Verdict:
    month = now.astimezone(org_zone(org)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return _refuse(402, "allocation_exhausted", allocation, _seconds_until(next_month(month), now))


def _rate_refusal(
    key: APIKey, rate: RateState, *, over_requests: bool, project: bool = False
) -> Verdict:
    rpm, tpm = project_limits(key) if project else limits_for(key)
    extra = {"scope": "project"} if project else {}
    verdict = _refuse(
        429,
        "rate_limit_requests" if over_requests else "rate_limit_tokens",
        rpm if over_requests else tpm,
        rate.retry_after,
        **extra,
    )
    verdict.rate = rate
    return verdict


def _rate_tightest(own: RateState, project: RateState) -> RateState:
    """The key's and the project's figures: of each, the one with less left."""

    def pick(a: Quota, b: Quota) -> Quota:
        return b if b.remaining < a.remaining else a

    return RateState(
        requests=pick(own.requests, project.requests),
        tokens=pick(own.tokens, project.tokens),
        limited=own.limited or project.limited,
        available=own.available,
    )


def _tightest(limit: int, used: int, project_limit: int, project_used: int, reset: int) -> Quota:
    """The quota to report: the key's, or the project's when it has less left."""
    own = Quota(limit, max(0, limit - used), reset)
    if not project_limit:
        return own
    theirs = Quota(project_limit, max(0, project_limit - project_used), reset)
    return theirs if theirs.remaining < own.remaining else own


def authorize_precheck(*, key: APIKey) -> Verdict | None:
    """The cheapest refusal, before the request's messages are tokenized: a key whose
    minute is already spent (429), or None."""
    rate = ratelimit_authorize_peek(key=key)
    if not rate.limited:
        return None
    return _rate_refusal(key, rate, over_requests=rate.requests.remaining == 0)


def request_authorize(
    *,
    key: APIKey,
    model: PriceModel,
    input_tokens: int,
    max_output_tokens: int,
    member: str = "",
    endpoint: str = "",
    now: datetime | None = None,
) -> Verdict:
    """Allow the request and hold its worst-case cost, or say why not (402 money, 429 rate)."""
    now = now or timezone.now()
    org = key.organization
    member = member_attributed(owner=key_owner(key), named=member)
    estimate = request_cost_estimate(
        model=model, input_tokens=input_tokens, max_output_tokens=max_output_tokens
    )
    # A request that would hold nothing (no credits, no tokens) is decided without a
    # reservation on the database's path: there is nothing for the counters to hold.
    if counters_enabled() and reservation_needed(estimate):
        return _authorize_on_counters(
            key=key, model=model, estimate=estimate, member=member, endpoint=endpoint, now=now
        )
    rate = ratelimit_authorize(key=key, tokens=estimate.total_tokens)
    if rate.limited:
        over_requests = rate.tokens.remaining >= estimate.total_tokens
        return _rate_refusal(key, rate, over_requests=over_requests)
    project_rate = ratelimit_authorize_project(key=key, tokens=estimate.total_tokens)
    if project_rate is not None and project_rate.limited:
        over_requests = project_rate.tokens.remaining >= estimate.total_tokens
        # The headers: the project's figure that refused, the key's other one.
        refused = RateState(
            requests=project_rate.requests if over_requests else rate.requests,
            tokens=rate.tokens if over_requests else project_rate.tokens,
            limited=True,
        )
        return _rate_refusal(key, refused, over_requests=over_requests, project=True)
    if project_rate is not None and project_rate.available:
        rate = _rate_tightest(rate, project_rate)
    budgets = [
        b
        for b in applicable_budgets(
            org_id=org.pk, api_key_id=key.pk, member=member, project_id=key.project_id
        )
        if b.hard_limit is not None
    ]
    with transaction.atomic():
        refusal, _held, _tokens = _money_check(key=key, budgets=budgets, estimate=estimate, now=now)
        if refusal is not None:
            refusal.rate = rate
            return refusal
        if not reservation_needed(estimate):
            return Verdict(True, 200, estimate=estimate, rate=rate)
        reservation = _reservation(key, model, estimate, member, endpoint, now)
        reservation_hold(reservation=reservation)
    return Verdict(True, 200, estimate=estimate, reservation=reservation, rate=rate)


def _reservation(
    key: APIKey, model: PriceModel, estimate: Estimate, member: str, endpoint: str, now: datetime
) -> Reservation:
    # Built from its columns in their order, as a row read from the database is (Django's
    # positional path): by keyword, with the related objects set through their
    # descriptors, building it cost as much as sending it to Redis.
    columns = {
        "organization_id": key.organization_id,
        "public_id": RESERVATION_PREFIX + secrets.token_urlsafe(18),
        "api_key_id": key.pk,
        "project_id": key.project_id,
        "member": member,
        "endpoint": endpoint,
        "model_id": model.pk,
        "credits": estimate.estimated_cost,
        "tokens": estimate.total_tokens,
        "status": ReservationStatus.HELD,
        "created_at": now,
        "expires_at": now + reservation_ttl(),
        "closed_at": None,
        "settled_credits": None,
        "record_id": "",
    }
    # django-stubs checks a star argument as the first field (id), not column by column.
    return Reservation(*(columns.get(name) for name in _RESERVATION_COLUMNS))  # type: ignore[misc]


def _authorize_on_counters(
    *,
    key: APIKey,
    model: PriceModel,
    estimate: Estimate,
    member: str,
    endpoint: str,
    now: datetime,
) -> Verdict:
    """The decision in one Redis script (spend/services/spend_counters.py): rate, pause,
    budgets, balance and allocation, and the hold placed if all pass."""
    org = key.organization
    rpm, tpm = limits_for(key)
    prpm, ptpm = project_limits(key)
    window, reset = rate_window()
    reservation = _reservation(key, model, estimate, member, endpoint, now)
    try:
        verdict, detail, requests, used, prequests, pused = counters_authorize(
            key=key,
            reservation=reservation,
            starts=period_starts(org, now),
            rpm=rpm,
            tpm=tpm,
            window_ttl=2 * WINDOW_SECONDS,
            rate_keys=rate_keys(org.pk, str(key.pk), window),
            now=now,
            project_limits=(prpm, ptpm),
            project_rate_keys=rate_keys(org.pk, f"p{key.project_id}", window),
        )
    except UNAVAILABLE as exc:
        logger.warning(
            "usage.spend.counters_unavailable", extra={"org": org.pk, "error": str(exc)[:300]}
        )
        refusal = _refuse(402, "spend_controls_unavailable", None, 1)
        refusal.rate = RateState(
            requests=Quota(rpm, rpm, reset), tokens=Quota(tpm, tpm, reset), limited=False,
            available=False,
        )  # fmt: skip
        return refusal
    rate = RateState(
        requests=_tightest(rpm, requests, prpm, prequests, reset),
        tokens=_tightest(tpm, used, ptpm, pused, reset),
        limited=verdict.startswith("rate_"),
    )
    if verdict == "ok":
        return Verdict(True, 200, estimate=estimate, reservation=reservation, rate=rate)
    if verdict.startswith("rate_"):
        return _rate_refusal(
            key, rate, over_requests=verdict == "rate_requests", project=detail == "project"
        )
    if verdict == "paused":
        refusal = _refuse(402, "key_paused", None, None)
    elif verdict == "budget":
        budget = Budget.objects.filter(organization_id=org.pk, pk=int(detail)).first()
        refusal = (
            _budget_refusal(budget, org, now)
            if budget is not None
            else _refuse(402, "budget_exceeded", None, 1)
        )
    elif verdict == "balance":
        refusal = _balance_refusal(amount_decode(detail))
    else:
        refusal = _allocation_refusal(int(detail), org, now)
    refusal.rate = rate
    return refusal
