"""The reference model of the model test (test_model.py): what an organization's balance,
records, payments and rolled-up days should be after each operation, written from the
rules (docs/api.md, docs/money.md) and the shipped price list typed in by hand, never
computed by the code under test."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

# The shipped price list (billing/migrations/0002_price_list.py), typed in by hand:
# credits per million tokens (input and output alike) and per worker-hour.
PER_MILLION_TOKENS = {
    "llama-3.1-8b": Decimal("0.10"),
    "llama-3.1-70b": Decimal("0.90"),
    "e5-large-v2": Decimal("0.01"),
    "phi-3-mini": Decimal("0.05"),
}
WORKER_HOUR = {
    "llama-3.1-8b": Decimal("0.60"),
    "llama-3.1-70b": Decimal("2.40"),
    "e5-large-v2": Decimal("0.20"),
    "phi-3-mini": Decimal("0.30"),
}
CORE_HOUR = {"managed": Decimal("0.12"), "controller": Decimal("0.03")}


def r10(value: Decimal) -> Decimal:
    return value.quantize(Decimal("1e-10"), rounding=ROUND_HALF_EVEN)


def r6(value: Decimal) -> Decimal:
    return value.quantize(Decimal("1e-6"), rounding=ROUND_HALF_EVEN)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- The model ------------------------------------------------------------------------------


@dataclass
class Stored:
    kind: str
    day: date  # the local day its rollup row is on (jobs: submission; sessions: start)
    credits: Decimal = Decimal(0)
    tokens: int = 0
    num_records: int = 0
    core_hours: Decimal = Decimal(0)
    status: str = ""
    days_touched: tuple = ()


@dataclass
class Model:
    zone: ZoneInfo
    may_overdraw: bool
    balance: Decimal = Decimal(0)
    records: dict = field(default_factory=dict)  # (kind, id) -> Stored
    payments: dict = field(default_factory=dict)  # pk -> status
    payment_credits: dict = field(default_factory=dict)
    rolled: set = field(default_factory=set)  # days rolled up and not touched since

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def charge(self, record: dict) -> tuple[Decimal, Decimal]:
        """(credits, core-hours) of one record, from the price list typed in above."""
        kind = record["kind"]
        if kind == "query":
            tokens = record["input_tokens"] + record["output_tokens"]
            return r10(tokens * PER_MILLION_TOKENS[record["model"]] / 1_000_000), Decimal(0)
        if kind == "worker_session":
            minutes = record["_minutes"]
            return r10(WORKER_HOUR[record["model"]] * minutes / 60), Decimal(0)
        if kind == "job" and record["status"] in ("completed", "failed", "cancelled"):
            if "core_hours" in record:
                core_hours = r6(Decimal(str(record["core_hours"])))
            else:
                core_hours = r6(record["cores"] * Decimal(record["_minutes"]) / 60)
            rate = CORE_HOUR["controller" if record.get("controller") else "managed"]
            return r10(core_hours * rate), core_hours
        return Decimal(0), Decimal(0)

    def ingest(self, records: list[dict]) -> dict:
        """What the service must answer: accepted, duplicates, rejected (index, field)."""
        accepted, duplicates, rejected = [], [], []
        total = Decimal(0)
        changes = []
        for index, record in self._batch_merged(records, duplicates, rejected):
            key = (record["kind"], record["id"])
            existing = self.records.get(key)
            moves_forward = (
                existing is not None
                and record["kind"] == "job"
                and _forward(existing.status, record["status"])
            )
            if existing is not None and not moves_forward:  # a replay, or a stale job status
                duplicates.append(record["id"])
                continue
            credits, core_hours = self.charge(record)
            if not self.may_overdraw and credits > 0 and total + credits > self.balance:
                rejected.append((index, "credits"))
                continue
            total += credits
            accepted.append(record["id"])
            changes.append((key, record, credits, core_hours))
        for key, record, credits, core_hours in changes:
            self.records[key] = self._stored(record, credits, core_hours)
            for day in self.records[key].days_touched:
                self.rolled.discard(day)
        self.balance -= total
        rejected.sort()
        return {"accepted": accepted, "duplicates": sorted(duplicates), "rejected": rejected}

    @staticmethod
    def _batch_merged(records: list[dict], duplicates: list, rejected: list) -> list:
        """The batch with each id once, at its first index: a later record for a job in
        the same batch with a later status moves it forward (the first submission time
        stays), an equal or earlier one is a duplicate, another end a conflict."""
        first: dict = {}
        for index, record in enumerate(records):
            key = (record["kind"], record["id"])
            if key not in first:
                first[key] = (index, record)
                continue
            at, earlier = first[key]
            if record["kind"] != "job" or not _forward(earlier["status"], record["status"]):
                if record["kind"] == "job" and _other_end(earlier["status"], record["status"]):
                    rejected.append((index, "status"))
                else:
                    duplicates.append(record["id"])
                continue
            merged = {**record, "submitted_at": earlier["submitted_at"]}
            merged["_submitted"] = earlier["_submitted"]
            merged["controller"] = record.get("controller") or earlier.get("controller")
            if merged["controller"] is None:
                del merged["controller"]
            first[key] = (at, merged)
        return sorted(first.values(), key=lambda pair: pair[0])

    def _stored(self, record: dict, credits: Decimal, core_hours: Decimal) -> Stored:
        kind = record["kind"]
        if kind == "query":
            day = self.local_day(record["_occurred_at"])
            touched = (day,)
            tokens = record["input_tokens"] + record["output_tokens"]
            return Stored(kind, day, credits, tokens=tokens, days_touched=touched)
        if kind == "worker_session":
            first = self.local_day(record["_start"])
            last = self.local_day(record["_end"])
            touched = tuple(first + timedelta(n) for n in range((last - first).days + 1))
            return Stored(kind, first, credits, days_touched=touched)
        if kind == "matching":
            day = self.local_day(record["_start"])
            return Stored(kind, day, num_records=record["num_records"], days_touched=(day,))
        day = self.local_day(record["_submitted"])
        return Stored(
            kind, day, credits, core_hours=core_hours, status=record["status"], days_touched=(day,)
        )

    def day_figures(self, day: date) -> dict:
        f: Counter = Counter()
        for stored in self.records.values():
            if stored.day != day:
                continue
            if stored.kind == "query":
                f["queries"] += 1
                f["query_tokens"] += stored.tokens
                f["query_credits"] += stored.credits
            elif stored.kind == "worker_session":
                f["sessions_started"] += 1
                f["worker_credits"] += stored.credits
            elif stored.kind == "matching":
                f["runs"] += 1
                f["num_records"] += stored.num_records
            else:
                f["submitted"] += 1
                f[stored.status] += 1
                f["job_credits"] += stored.credits
                f["core_hours"] += stored.core_hours
        return {k: v for k, v in f.items() if v}


def has_hours(table) -> bool:
    return any(f.name == "hour" for f in table._meta.get_fields())


STEP_OF = {"submitted": 0, "running": 1, "completed": 2, "failed": 2, "cancelled": 2}


def _forward(current: str, wanted: str) -> bool:
    return STEP_OF[wanted] > STEP_OF[current]


def _other_end(current: str, wanted: str) -> bool:
    return current != wanted and STEP_OF[wanted] == STEP_OF[current] == 2
