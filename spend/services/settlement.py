"""What ingestion does for spend controls, called from usage_records_ingest in three
places: take the spend lock and load the reservations the batch carries; work out the
balance a no-overdraft batch may use (less what other reservations hold, and with the
spend counters on, no more than it took through their script, so an authorization never
counts on the same credits); after the write,
settle the reservations at their real cost, add the charges to the spend counters and
flag what went over a hard level without a reservation (OverCap). A record settled with a
reservation made for another key or member is unreserved for the key and member that
charged: flagging looks at who charged, whoever's reservation settled it.

Ingestion records what happened: nothing here refuses a record. A query past the free
tier's monthly allocation is stored and charged only for the tokens within it (input
first, then output); the rest is flagged, uncharged.
"""

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone

from accounts.models import APIKey, Organization
from spend.models import Budget, BudgetScope, OverCap, Reservation, ReservationStatus
from spend.services.authorize import budgets_spent_and_held
from spend.services.counter_keys import counters_enabled
from spend.services.counters_rebuild import held_after_expiry
from spend.services.holds import (
    KEY,
    MEMBER,
    ORG,
    PROJECT,
    Subject,
    budget_subject,
    charge_day,
    charges_by_subject,
    holds_add,
    holds_refresh,
    reservation_subjects,
    reservations_expire,
    spend_days_add,
    spend_lock,
)
from spend.services.spend_counters import BalanceTake, counters_charge, counters_release_on_commit
from usage.models import IngestBatch
from usage.pricing import query_credits


def _uncovered(charge: tuple, covered: list[Subject]) -> list[tuple[Subject, Decimal]]:
    """The counters a charge moves that the reservation settling it did not hold for
    (another key's or member's reservation): for them the charge is unreserved, and
    over-cap flagging must see it as such."""
    key_id, member, credits, _tokens, project_id = charge
    return [
        (subject, credits)
        for subject in reservation_subjects(api_key_id=key_id, member=member, project_id=project_id)
        if subject not in covered
    ]


def _key_projects(key_ids: set[int]) -> dict[int, int]:
    """Each key's project (a job's charge counts against its key's project)."""
    if not key_ids:
        return {}
    return dict(APIKey.objects.filter(pk__in=key_ids).values_list("pk", "project_id"))


class SpendBatch:
    """One batch's part in spend controls (see the module docstring)."""

    def __init__(
        self,
        org: Organization,
        held: Decimal,
        reservations: dict[str, Reservation],
        *,
        take: BalanceTake,
        now: datetime,
    ):
        self.org = org
        self.held = held
        self.reservations = reservations
        self.over: list[OverCap] = []
        self.take = take
        self.now = now

    @classmethod
    def begin(
        cls,
        *,
        org: Organization,
        queries: dict[str, Any],
        now: datetime,
        take: BalanceTake | None = None,
    ) -> "SpendBatch":
        """Take the organization's spend lock (after its usage lock); load the live
        reservations the batch's queries name."""
        held, _tokens = spend_lock(org.pk)
        if counters_enabled():
            # Authorize writes reservations without touching the holds: they are the rows'.
            held = held_after_expiry(org_id=org.pk, now=now)
        elif reservations_expire(org_id=org.pk, now=now):
            held, _tokens = spend_lock(org.pk)
        wanted = {c.reservation for c in queries.values() if c.reservation}
        found = {}
        if wanted:
            found = {
                r.public_id: r
                for r in Reservation.objects.filter(
                    organization=org, public_id__in=wanted, status=ReservationStatus.HELD
                )
            }
        return cls(org, held, found, take=take or BalanceTake(), now=now)

    def available(self, balance: Decimal, *, need: Decimal) -> Decimal:
        """The balance a no-overdraft batch may spend: what other reservations hold is
        not its to use; what its own reservations hold is. With the counters on, the
        batch takes up to `need` (the most its records can cost) through the same
        script authorize decides in, and may spend no more than it was granted: a
        reservation placed after this batch began is counted there, not here."""
        own = sum((r.credits for r in self.reservations.values()), Decimal(0))
        available = balance - self.held + own
        granted = self.take.take(
            org=self.org, need=max(need, Decimal(0)), own=list(self.reservations), now=self.now
        )
        return available if granted is None else min(available, granted)

    def spend(self, credits: Decimal) -> None:
        """The batch accepted `credits`: what it took beyond them goes back."""
        self.take.keep(credits)

    def allocation_overrun(self, c: Any, *, used: int, allocation: int) -> Decimal:
        """A query past the free allocation: its credits for the tokens within it only."""
        room = max(0, allocation - used)
        charged_in = min(c.values["input_tokens"], room)
        charged_out = min(c.values["output_tokens"], room - charged_in)
        credits = query_credits(
            model=c.values["model"], input_tokens=charged_in, output_tokens=charged_out
        )
        self.over.append(
            OverCap(
                organization=self.org,
                reason=OverCap.Reason.ALLOCATION,
                member=c.values["member"],
                records=1,
                uncharged_credits=c.credits - credits,
            )
        )
        return credits

    def settle(
        self,
        *,
        new: dict[str, list],
        job_updates: list,
        batch: IngestBatch,
        api_key: APIKey | None,
        at: datetime | None,
    ) -> None:
        """After the batch is written: settle, count, flag."""
        key_id = api_key.pk if api_key is not None else None
        project_id = api_key.project_id if api_key is not None else None
        now = timezone.now()
        charges, unreserved = [], []
        uncovered: list[tuple[Subject, Decimal]] = []
        settled: list[Reservation] = []
        release: dict = defaultdict(lambda: [Decimal(0), 0])
        for kind, items in new.items():
            for c in items:
                member = c.values.get("member", "") if kind == "query" else ""
                charge = (key_id, member, c.credits, c.tokens, project_id)
                charges.append(charge)
                r = self.reservations.pop(c.reservation, None) if kind == "query" else None
                if r is None:
                    unreserved.append(charge)
                    continue
                r.status, r.closed_at = ReservationStatus.SETTLED, now
                r.settled_credits, r.record_id = c.credits, c.client_id
                settled.append(r)
                covered = reservation_subjects(
                    api_key_id=r.api_key_id, member=r.member, project_id=r.project_id
                )
                for subject in covered:
                    release[subject][0] -= r.credits
                    release[subject][1] -= r.tokens
                uncovered.extend(_uncovered(charge, covered))
                if c.credits > r.credits:
                    self._flag(OverCap.Reason.RESERVATION, key_id, member, c.credits - r.credits)
        job_projects = _key_projects({job.api_key_id for job, _c in job_updates} - {None})
        for job, c in job_updates:
            charge = (job.api_key_id, "", c.credits, 0, job_projects.get(job.api_key_id))
            charges.append(charge)
            unreserved.append(charge)
        if settled:
            Reservation.objects.bulk_update(
                settled, ["status", "closed_at", "settled_credits", "record_id"]
            )
            if counters_enabled():
                holds_refresh(org_id=self.org.pk)
            else:
                holds_add(org_id=self.org.pk, amounts={s: tuple(v) for s, v in release.items()})
        day = charge_day(self.org, at or now)
        by_subject = charges_by_subject(charges, day=day)
        spend_days_add(org_id=self.org.pk, amounts=by_subject)
        counters_charge(org=self.org, amounts=by_subject)
        counters_release_on_commit(
            org_id=self.org.pk, reservation_ids=[r.public_id for r in settled]
        )
        fed = charges_by_subject(unreserved, day=day)
        for (dimension, named), credits in uncovered:
            before = fed.get((dimension, named, day), (Decimal(0), 0))
            fed[(dimension, named, day)] = (before[0] + credits, before[1])
        self._flag_budgets(fed, now=at or now)
        for over in self.over:
            over.batch, over.api_key_id = batch, over.api_key_id or key_id
        if self.over:
            OverCap.objects.bulk_create(self.over)

    def _flag(self, reason: str, key_id: int | None, member: str, credits: Decimal) -> None:
        self.over.append(
            OverCap(
                organization=self.org,
                reason=reason,
                api_key_id=key_id,
                member=member,
                records=1,
                credits=credits,
            )
        )

    def _flag_budgets(self, unreserved: dict, *, now: datetime) -> None:
        """Hard budgets now over their level that this batch's unreserved charges fed."""
        fed = {(d, s): c for (d, s, _day), (c, _t) in unreserved.items() if c > 0}
        if not fed:
            return
        match = Q(scope=BudgetScope.ORGANIZATION) if (ORG, "") in fed else Q(pk__in=[])
        keys = [int(s) for d, s in fed if d == KEY]
        members = [s for d, s in fed if d == MEMBER]
        projects = [int(s) for d, s in fed if d == PROJECT]
        if keys:
            match |= Q(scope=BudgetScope.API_KEY, api_key_id__in=keys)
        if members:
            match |= Q(scope=BudgetScope.MEMBER, member__in=members)
        if projects:
            match |= Q(scope=BudgetScope.PROJECT, project_id__in=projects)
        budgets = list(
            Budget.objects.filter(match, organization=self.org, hard_limit__isnull=False)
        )
        figures = budgets_spent_and_held(org=self.org, budgets=budgets, now=now)
        for b in budgets:
            spent, held = figures[b.pk]
            assert b.hard_limit is not None
            excess = spent + held - b.hard_limit
            if excess <= 0:
                continue
            subject = budget_subject(b)
            over = OverCap(
                organization=self.org,
                reason=OverCap.Reason.BUDGET,
                budget=b,
                api_key_id=b.api_key_id,
                member=b.member,
                credits=min(excess, fed[subject]),
            )
            self.over.append(over)
