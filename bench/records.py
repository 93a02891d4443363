"""Benchmark records as a gateway sends them, what each should cost, and a raw COPY of
the same rows as the yardstick for ingestion."""

import random
import time
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.db import connection, transaction
from django.utils import timezone

from bench.load import PLACEHOLDER
from bench.product import RECORD_MODELS, CoreHourRate, IngestBatch, PriceModel

MODELS = ["llama-3.1-8b", "llama-3.1-70b", "e5-large-v2", "phi-3-mini"]
ENDPOINTS = ["/v1/chat/completions", "/v1/embeddings"]
_TEN_PLACES = Decimal("1e-10")
_SIX_PLACES = Decimal("1e-6")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def records_mix(
    rng: random.Random, prefix: str, size: int, lo: datetime, hi: datetime, *, end_by_hi: bool
) -> list[dict]:
    """The usual mix: 70% queries, 15% finished jobs, 10% worker sessions, 5% matching
    runs, starting in [lo, hi); with end_by_hi every record has ended by hi (a stream of
    the last minutes), else jobs run up to 2 hours and sessions up to 10."""
    span = max(int((hi - lo).total_seconds()) - 1, 1)
    records = []
    for n in range(size):
        at = lo + timedelta(seconds=rng.randint(0, span), microseconds=rng.randint(0, 999_999))
        room = (hi - at) // timedelta(seconds=1) - 1 if end_by_hi else 10**9
        record: dict = {"id": f"{prefix}-{n}"}
        roll = rng.random()
        if roll < 0.70:
            record.update(
                kind="query",
                occurred_at=iso(at),
                model=rng.choice(MODELS),
                input_tokens=rng.randint(10, 2000),
                output_tokens=rng.randint(0, 1000),
                endpoint=rng.choice(ENDPOINTS),
                member=f"user{rng.randint(1, 20)}@bench.example",
            )
        elif roll < 0.85:
            end = at + timedelta(seconds=max(min(room, rng.randint(60, 7200)), 0))
            record.update(kind="job", status="completed", cores=rng.choice([4, 8, 16]))
            record.update(submitted_at=iso(at), started_at=iso(at), ended_at=iso(end))
            if rng.random() < 0.5:
                record["controller"] = "bench-ctl"
        elif roll < 0.95:
            end = at + timedelta(seconds=max(min(room, rng.randint(60, 36_000)), 0))
            record.update(kind="worker_session", model=rng.choice(MODELS))
            record.update(started_at=iso(at), ended_at=iso(end))
        else:
            end = at + timedelta(seconds=max(min(room, rng.randint(5, 600)), 0))
            record.update(kind="matching", task=rng.choice(["IDR", "CDM"]))
            record.update(num_records=rng.randint(100, 100_000))
            record.update(started_at=iso(at), ended_at=iso(end))
        records.append(record)
    return records


def day_batches(
    size: int, count: int, *, seed: int = 7, prefix: str = PLACEHOLDER
) -> list[list[dict]]:
    """`count` batches of the mix spread over a day two days back (about one bucket per
    record: the worst case for the aggregates' upserts); ids `<prefix><batch>-<record>`."""
    rng = random.Random(seed)  # noqa: S311 - benchmark data
    lo = timezone.now() - timedelta(days=2)
    return [
        records_mix(rng, f"{prefix}{n}", size, lo, lo + timedelta(days=1), end_by_hi=False)
        for n in range(count)
    ]


# --- Prices, restated -------------------------------------------------------------------


def _hours(start: str, end: str) -> Decimal:
    micro = (datetime.fromisoformat(end) - datetime.fromisoformat(start)) // timedelta(
        microseconds=1
    )
    return Decimal(micro) / Decimal(3_600_000_000)


def _round(value: Decimal, quantum: Decimal) -> Decimal:
    return value.quantize(quantum, rounding=ROUND_HALF_EVEN)


class PriceList:
    """What each record should cost, from the price list's rows and docs/money.md's rules,
    written out here rather than calling the service's pricing, so a pricing bug shows."""

    def __init__(self) -> None:
        self.models = {m.name: m for m in PriceModel.objects.all()}
        self.rates = dict(CoreHourRate.objects.values_list("compute", "rate"))

    def credits(self, r: dict) -> Decimal:
        return self.charge(r)[0]

    def charge(self, r: dict) -> tuple[Decimal, Decimal | None]:
        """(credits, billed core-hours) of one record."""
        if r["kind"] == "query":
            model = self.models[r["model"]]
            cost = (
                r["input_tokens"] * model.input_price_per_million
                + r["output_tokens"] * model.output_price_per_million
            ) / 1_000_000
            return _round(cost, _TEN_PLACES), None
        if r["kind"] == "worker_session":
            rate = self.models[r["model"]].worker_hour_rate
            return _round(rate * _hours(r["started_at"], r["ended_at"]), _TEN_PLACES), None
        if r["kind"] == "job":
            core_hours = _round(r["cores"] * _hours(r["started_at"], r["ended_at"]), _SIX_PLACES)
            rate = self.rates["controller" if r.get("controller") else "managed"]
            return _round(core_hours * rate, _TEN_PLACES), core_hours
        return Decimal(0), None  # matching runs are not priced


# --- The yardstick: a raw COPY of the same rows ------------------------------------------


def copy_rate(setup, batches: list[list[dict]]) -> float:
    """Records/s of COPYing these records, as the rows ingestion writes (same tables,
    columns and values), into the same tables on one connection, one transaction per
    batch; the rows are built before the clock starts. PostgreSQL only."""
    prices = PriceList()
    prepared = []
    for records in batches:
        batch = IngestBatch.objects.create(
            organization=setup.org, api_key=setup.key, project_id=setup.key.project_id
        )
        prepared.append(_table_rows(records, setup, batch, prices))
    started = time.perf_counter()
    for tables in prepared:
        with transaction.atomic(), connection.cursor() as cursor:
            for table, columns, rows in tables:
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
    return sum(len(records) for records in batches) / (time.perf_counter() - started)


def _table_rows(records: list[dict], setup, batch, prices: PriceList) -> list:
    now = timezone.now()
    tables: dict[str, tuple[list[str], list[list]]] = {}
    for r in records:
        credits, core_hours = prices.charge(r)
        row = {
            "organization_id": setup.org.pk,
            "client_id": r["id"],
            "api_key_id": setup.key.pk,
            "batch_id": batch.pk,
            "project_id": batch.project_id,
            "credits": credits,
            "created_at": now,
        }
        row.update(_kind_columns(r, prices, setup.controller, core_hours, now))
        table = RECORD_MODELS[r["kind"]]._meta.db_table
        columns, rows = tables.setdefault(table, (list(row), []))
        rows.append([row[c] for c in columns])
    return [(table, columns, rows) for table, (columns, rows) in tables.items()]


def _kind_columns(r: dict, prices: PriceList, controller, core_hours, now) -> dict:
    if r["kind"] == "query":
        return {
            "model_id": prices.models[r["model"]].pk,
            "occurred_at": datetime.fromisoformat(r["occurred_at"]),
            "input_tokens": r["input_tokens"],
            "output_tokens": r["output_tokens"],
            "total_tokens": r["input_tokens"] + r["output_tokens"],
            "endpoint": r["endpoint"],
            "member": r["member"],
        }
    start, end = datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["ended_at"])
    seconds = _round(Decimal((end - start) // timedelta(microseconds=1)) / 10**6, Decimal("1e-3"))
    if r["kind"] == "worker_session":
        return {
            "model_id": prices.models[r["model"]].pk,
            "started_at": start,
            "ended_at": end,
            "runtime_seconds": seconds,
        }
    if r["kind"] == "matching":
        return {
            "task": r["task"],
            "num_records": r["num_records"],
            "started_at": start,
            "ended_at": end,
            "run_time_seconds": seconds,
        }
    return {
        "status": r["status"],
        "cores": r["cores"],
        "controller_id": controller.pk if r.get("controller") else None,
        "submitted_at": datetime.fromisoformat(r["submitted_at"]),
        "started_at": start,
        "ended_at": end,
        "core_hours": core_hours,
        "charge_reference": "bench",
        "updated_at": now,
    }
