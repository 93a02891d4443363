"""Model test: random sequences of ingest, replay, pay, refund, adjust and rollup, checked
after every step against a simple single-threaded model written here from the rules
(docs/api.md, ingest/services/ingest.py's docstring) and the shipped price list typed in by
hand, never computed by the code under test: zero divergence.

Each seed is one organization (time zone, overdraft allowed or not) and 25 steps:
- ingest: a batch of new records of every kind, some replaying stored ones, some ids twice
  in the batch, running jobs and later their ends (the one repeat that changes something);
- replay: a whole earlier batch again (records refused for want of credits may now fit);
- pay: the sandbox's success or decline card, through payment_prepare/payment_confirm;
- refund: a succeeded payment, through payment_refund (the admin action's service);
- adjust: ledger_adjust of either sign;
- rollup: rollup_day for a closed day.
Checked each time: the balance (selector, cached, ledger sum), records per kind, tokens,
credits and core-hours, payments by status, and every clean rolled-up day's rows; a
rolled-up day a later record lands on must be marked dirty.
"""

import itertools
import random
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db.models import Sum

from accounts.models import Tier
from billing.cards import CardDetails
from billing.models import CreditAccount, LedgerEntry, Payment
from billing.selectors import credit_balance
from billing.services import (
    LedgerError,
    ledger_adjust,
    payment_confirm,
    payment_prepare,
    payment_refund,
)
from ingest.services.ingest import usage_records_ingest
from rollups.models import JobDaily, MatchingDaily, QueryDaily, RollupState, WorkerDaily
from rollups.services.days import rollup_day
from tests.factories import grant_credits, make_api_key, make_controller, make_org, make_user
from tests.reliability.usage_model import (
    PER_MILLION_TOKENS,
    WORKER_HOUR,
    Model,
    has_hours,
    iso,
    r6,
    r10,
)
from usage.models import Job, MatchingRun, Query, WorkerSession

pytestmark = pytest.mark.django_db

SEEDS = range(30)
STEPS = 25
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)

CARDS = {"success": "4242424242424242", "decline": "4000000000000002"}

TOTALS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    ops = ", ".join(f"{name} {TOTALS[name]}" for name in OPERATIONS)
    print(
        f"\n[model] {TOTALS['seeds']} seeds, {TOTALS['steps']} steps, zero divergence; "
        f"operations: {ops}; records sent {TOTALS['records']} (duplicates "
        f"{TOTALS['duplicates']}, refused for credits {TOTALS['refused for credits']}, "
        f"job ends {TOTALS['job moves']}); refunds refused {TOTALS['refunds refused']}, "
        f"adjustments refused {TOTALS['adjustments refused']}"
    )


def c10(summed) -> Decimal:
    """A database SUM of credits at the ledger's scale. SQLite adds decimals as floats
    (0.179537480000004 for 0.17953748); PostgreSQL's numeric sums are exact already."""
    return r10(Decimal(summed or 0))


def c6(summed) -> Decimal:
    return r6(Decimal(summed or 0))


# --- Random operations ----------------------------------------------------------------------

OPERATIONS = ("ingest", "replay", "pay", "refund", "adjust", "rollup")
WEIGHTS = (8, 2, 3, 2, 2, 3)


class World:
    def __init__(self, seed: int, rng: random.Random):
        self.rng = rng
        zone = rng.choice(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
        overdraw = seed % 3 == 0
        self.org = make_org(
            tier=Tier.ENTERPRISE if overdraw else Tier.STARTUP,
            allow_overdraft=overdraw,
            time_zone=zone,
        )
        self.key, _ = make_api_key(org=self.org)
        make_controller(org=self.org, name="dgx-01")
        self.operator = make_user(is_staff=True)
        self.model = Model(zone=ZoneInfo(zone), may_overdraw=overdraw)
        start = Decimal(rng.choice(["0.05", "1", "20"]))
        grant_credits(org=self.org, amount=start)
        self.model.balance += start
        self.batches: list[list[dict]] = []
        self.sent: list[dict] = []  # records sent before, for replays inside a batch
        self.running_jobs: list[dict] = []
        self.ids = itertools.count(1)
        self.today = self.model.local_day(NOW)

    # A moment on one of the five closed days before today (org time).
    def moment(self) -> datetime:
        day = self.today - timedelta(days=self.rng.randint(1, 5))
        local = datetime.combine(day, time(self.rng.randint(0, 23), self.rng.randint(0, 59)))
        return local.replace(tzinfo=self.model.zone).astimezone(UTC)

    def new_record(self) -> dict:
        rng, n = self.rng, next(self.ids)
        kind = rng.choice(["query", "query", "worker_session", "matching", "job", "job_running"])
        at = self.moment()
        if kind == "query":
            return {"id": f"q-{n}", "kind": "query", "occurred_at": iso(at), "_occurred_at": at,
                    "model": rng.choice(list(PER_MILLION_TOKENS)),
                    "input_tokens": rng.randint(0, 400_000),
                    "output_tokens": rng.randint(0, 900_000),
                    "endpoint": rng.choice(["/v1/chat/completions", "/v1/embeddings"]),
                    "member": rng.choice(["ana@example.com", "bo@example.com"])}  # fmt: skip
        minutes = rng.randint(0, 600)
        end = min(at + timedelta(minutes=minutes), NOW)
        minutes = int((end - at).total_seconds() // 60)
        if kind == "worker_session":
            return {"id": f"w-{n}", "kind": "worker_session",
                    "model": rng.choice(list(WORKER_HOUR)), "started_at": iso(at),
                    "ended_at": iso(end), "_start": at, "_end": end,
                    "_minutes": minutes}  # fmt: skip
        if kind == "matching":
            return {"id": f"m-{n}", "kind": "matching", "task": rng.choice(["IDR", "CDM"]),
                    "num_records": rng.randint(0, 10**6), "started_at": iso(at),
                    "ended_at": iso(end), "_start": at}  # fmt: skip
        submitted = at - timedelta(minutes=rng.randint(0, 30))
        job = {"id": f"j-{n}", "kind": "job", "cores": rng.choice([1, 2, 8, 64]),
               "submitted_at": iso(submitted), "started_at": iso(at), "_submitted": submitted,
               "_start": at, "_minutes": minutes}  # fmt: skip
        if rng.random() < 0.5:
            job["controller"] = "dgx-01"
        if kind == "job_running":
            job["status"] = "running"
            self.running_jobs.append(job)
            return job
        job["status"] = rng.choice(["completed", "completed", "failed", "cancelled"])
        job["ended_at"] = iso(end)
        if rng.random() < 0.3:
            job["core_hours"] = rng.choice([0, 0.5, 3, 12.25, 100])
        return job

    def job_end(self) -> dict | None:
        """The end of a job sent as running earlier: the same id, a later status."""
        if not self.running_jobs:
            return None
        job = self.running_jobs.pop(self.rng.randrange(len(self.running_jobs)))
        end = min(job["_start"] + timedelta(minutes=self.rng.randint(0, 300)), NOW)
        minutes = int((end - job["_start"]).total_seconds() // 60)
        ended = {**job, "status": self.rng.choice(["completed", "failed", "cancelled"]),
                 "ended_at": iso(end), "_minutes": minutes, "_end_of_running": True}  # fmt: skip
        if self.rng.random() < 0.3:
            ended["core_hours"] = self.rng.choice([0, 1.5, 7])
        return ended

    # --- operations

    def ingest(self, records: list[dict] | None = None) -> None:
        if records is None:
            records = []
            for _ in range(self.rng.randint(1, 6)):
                choice = self.rng.random()
                if choice < 0.15 and self.sent:
                    records.append(self.rng.choice(self.sent))  # a replayed record
                elif choice < 0.25:
                    end = self.job_end()
                    records.append(end if end is not None else self.new_record())
                else:
                    records.append(self.new_record())
            if len(records) > 1 and self.rng.random() < 0.2:
                records.append(records[0])  # the same id twice in one batch
            self.batches.append(records)
        TOTALS["records"] += len(records)
        wire = [{k: v for k, v in r.items() if not k.startswith("_")} for r in records]
        expected = self.model.ingest(records)
        result = usage_records_ingest(org=self.org, records=wire, api_key=self.key)
        got = {
            "accepted": result.accepted,
            "duplicates": sorted(result.duplicates),  # their order is not a contract
            "rejected": [(r.index, r.field) for r in result.rejected],
        }
        assert got == expected, (records, got, expected)
        TOTALS["duplicates"] += len(expected["duplicates"])
        TOTALS["refused for credits"] += len(expected["rejected"])
        TOTALS["job moves"] += sum(
            1 for r in records if r["kind"] == "job" and r["id"] in expected["accepted"]
            and r["status"] != "running" and "_end_of_running" in r
        )  # fmt: skip
        self.sent.extend(r for r in records if r["kind"] != "job" or r["status"] != "running")

    def replay(self) -> None:
        if not self.batches:
            return self.ingest()
        self.ingest(self.rng.choice(self.batches))

    def pay(self) -> None:
        outcome = self.rng.choice(["success", "success", "decline"])
        amount_minor = self.rng.choice([500, 1000, 2500, 4999])
        card = CardDetails(number=CARDS[outcome], exp_month=12, exp_year=2099, cvc="123")
        payment = payment_prepare(
            org=self.org,
            amount_minor=amount_minor,
            idempotency_key=f"model-{next(self.ids)}",
            card=card,
        )
        payment = payment_confirm(org=self.org, payment_id=payment.pk)
        expected = "succeeded" if outcome == "success" else "declined"
        assert payment.status == expected
        self.model.payments[payment.pk] = expected
        if expected == "succeeded":
            credits = Decimal(amount_minor) / 100  # one credit per dollar
            self.model.payment_credits[payment.pk] = credits
            self.model.balance += credits

    def refund(self) -> None:
        succeeded = [pk for pk, status in self.model.payments.items() if status == "succeeded"]
        if not succeeded:
            return self.pay()
        pk = self.rng.choice(succeeded)
        credits = self.model.payment_credits[pk]
        if not self.model.may_overdraw and credits > self.model.balance:
            with pytest.raises(LedgerError):
                payment_refund(payment_id=pk, actor=self.operator, reason="model test")
            TOTALS["refunds refused"] += 1
            return
        payment_refund(payment_id=pk, actor=self.operator, reason="model test")
        self.model.payments[pk] = "refunded"
        self.model.balance -= credits

    def adjust(self) -> None:
        amount = Decimal(self.rng.choice(["-30", "-2.5", "-0.0000000001", "0.75", "5", "40"]))
        key = f"adjust-{next(self.ids)}"
        if amount < 0 and not self.model.may_overdraw and self.model.balance + amount < 0:
            with pytest.raises(LedgerError):
                ledger_adjust(
                    org=self.org, amount=amount, reason="model", actor=self.operator,
                    idempotency_key=key,
                )  # fmt: skip
            TOTALS["adjustments refused"] += 1
            return
        ledger_adjust(
            org=self.org, amount=amount, reason="model", actor=self.operator, idempotency_key=key
        )
        self.model.balance += amount

    def rollup(self) -> None:
        day = self.today - timedelta(days=self.rng.randint(1, 5))
        rollup_day(org=self.org, day=day)
        self.model.rolled.add(day)

    # --- the check after every step

    def check(self) -> None:
        org, model = self.org, self.model
        ledger_sum = c10(
            LedgerEntry.objects.filter(organization=org).aggregate(s=Sum("amount"))["s"]
        )
        cached = CreditAccount.objects.get(organization=org).balance
        assert credit_balance(org=org) == ledger_sum == cached == model.balance, (
            credit_balance(org=org), ledger_sum, cached, model.balance,
        )  # fmt: skip

        by_kind: Counter = Counter()
        for stored in model.records.values():
            by_kind[stored.kind] += 1
        tables = {"query": Query, "worker_session": WorkerSession, "matching": MatchingRun,
                  "job": Job}  # fmt: skip
        for kind, table in tables.items():
            assert table.objects.filter(organization=org).count() == by_kind[kind], kind

        def total(kind: str, attribute: str):
            return sum(
                (getattr(s, attribute) for s in model.records.values() if s.kind == kind),
                Decimal(0) if attribute in ("credits", "core_hours") else 0,
            )

        queries = Query.objects.filter(organization=org).aggregate(
            t=Sum("total_tokens"), c=Sum("credits")
        )
        assert (queries["t"] or 0, c10(queries["c"])) == (
            total("query", "tokens"), total("query", "credits")
        )  # fmt: skip
        workers = WorkerSession.objects.filter(organization=org).aggregate(c=Sum("credits"))
        assert c10(workers["c"]) == total("worker_session", "credits")
        matching = MatchingRun.objects.filter(organization=org).aggregate(n=Sum("num_records"))
        assert (matching["n"] or 0) == total("matching", "num_records")
        jobs = Job.objects.filter(organization=org).aggregate(c=Sum("credits"), h=Sum("core_hours"))
        assert (c10(jobs["c"]), c6(jobs["h"])) == (
            total("job", "credits"), total("job", "core_hours")
        )  # fmt: skip
        statuses = Counter(s.status for s in model.records.values() if s.kind == "job")
        stored_statuses = Counter(
            Job.objects.filter(organization=org).values_list("status", flat=True)
        )
        assert stored_statuses == statuses
        assert Counter(
            Payment.objects.filter(organization=org).values_list("status", flat=True)
        ) == Counter(model.payments.values())

        states = dict(RollupState.objects.filter(organization=org).values_list("day", "dirty"))
        for day in model.rolled:
            assert states.get(day) is False, (day, states.get(day))
            assert self.rollup_figures(day) == model.day_figures(day), day
        for day, dirty in states.items():
            if day not in model.rolled and any(
                day in s.days_touched for s in model.records.values()
            ):
                assert dirty, f"{day}: a record landed on it after its rollup"

    def rollup_figures(self, day: date) -> dict:
        """The day's whole-day rollup rows, summed (hour rows, where kept, left out)."""
        org = self.org
        whole_day = {"hour__isnull": True} if has_hours(QueryDaily) else {}
        f: Counter = Counter()
        q = QueryDaily.objects.filter(
            organization=org, day=day, dimension="detail", **whole_day
        ).aggregate(n=Sum("queries"), t=Sum("total_tokens"), c=Sum("credits"))
        f["queries"], f["query_tokens"] = q["n"] or 0, q["t"] or 0
        f["query_credits"] = c10(q["c"])
        w = WorkerDaily.objects.filter(organization=org, day=day, **whole_day).aggregate(
            n=Sum("sessions_started"), c=Sum("credits")
        )
        f["sessions_started"], f["worker_credits"] = w["n"] or 0, c10(w["c"])
        m = MatchingDaily.objects.filter(organization=org, day=day, **whole_day).aggregate(
            n=Sum("runs"), r=Sum("num_records")
        )
        f["runs"], f["num_records"] = m["n"] or 0, m["r"] or 0
        j = JobDaily.objects.filter(organization=org, day=day, **whole_day).aggregate(
            s=Sum("submitted"), co=Sum("completed"), ru=Sum("running"), fa=Sum("failed"),
            ca=Sum("cancelled"), c=Sum("credits"), h=Sum("core_hours"),
        )  # fmt: skip
        f["submitted"], f["completed"], f["running"] = j["s"] or 0, j["co"] or 0, j["ru"] or 0
        f["failed"], f["cancelled"] = j["fa"] or 0, j["ca"] or 0
        f["job_credits"], f["core_hours"] = c10(j["c"]), c6(j["h"])
        return {k: v for k, v in f.items() if v}


@pytest.mark.parametrize("seed", SEEDS)
def test_random_operations_never_diverge_from_the_model(seed):
    rng = random.Random(seed)
    with time_machine.travel(NOW, tick=False):
        world = World(seed, rng)
        world.check()
        for _ in range(STEPS):
            operation = rng.choices(OPERATIONS, WEIGHTS)[0]
            getattr(world, operation)()
            TOTALS[operation] += 1
            TOTALS["steps"] += 1
            world.check()
    TOTALS["seeds"] += 1
