"""What usage costs: the price list read once per batch, and pure credit formulas.

Each record's credits are rounded once (billing.money.credits_round) and a batch's
debit is the exact sum of its records' credits, so the ledger always matches them.
Core-hours are a quantity, not money: they are kept to six decimal places.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from billing.models import Compute, CoreHourRate, PriceModel
from billing.money import credits_round

CORE_HOURS_QUANTUM = Decimal("0.000001")
RUNTIME_QUANTUM = Decimal("0.001")
_MICROSECONDS_PER_HOUR = Decimal(3_600_000_000)
_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class PriceBook:
    """The price list as it stands when a batch arrives (changes apply from then on)."""

    models: dict[str, PriceModel]
    managed_core_hour_rate: Decimal
    controller_core_hour_rate: Decimal

    def core_hour_rate(self, *, on_controller: bool) -> Decimal:
        return self.controller_core_hour_rate if on_controller else self.managed_core_hour_rate


def price_book_load() -> PriceBook:
    """Read the price list: every model by name and the two core-hour rates (2 queries)."""
    models = {m.name: m for m in PriceModel.objects.all()}
    rates = dict(CoreHourRate.objects.values_list("compute", "rate"))
    return PriceBook(
        models=models,
        managed_core_hour_rate=rates.get(Compute.MANAGED, Decimal("0")),
        controller_core_hour_rate=rates.get(Compute.CONTROLLER, Decimal("0")),
    )


def hours_between(start: datetime, end: datetime) -> Decimal:
    """Exact wall-clock hours from start to end (microsecond resolution)."""
    return Decimal((end - start) // timedelta(microseconds=1)) / _MICROSECONDS_PER_HOUR


def seconds_between(start: datetime, end: datetime) -> Decimal:
    """Wall-clock seconds, to the millisecond, as stored on records."""
    micro = Decimal((end - start) // timedelta(microseconds=1))
    return (micro / 1_000_000).quantize(RUNTIME_QUANTUM, rounding=ROUND_HALF_EVEN)


def core_hours_for(*, cores: int, started_at: datetime | None, ended_at: datetime) -> Decimal:
    """Cores × wall-clock hours, to six places; a job that never started used none."""
    if started_at is None:
        return Decimal("0").quantize(CORE_HOURS_QUANTUM)
    return (cores * hours_between(started_at, ended_at)).quantize(
        CORE_HOURS_QUANTUM, rounding=ROUND_HALF_EVEN
    )


def core_hours_normalize(value: Decimal) -> Decimal:
    return value.quantize(CORE_HOURS_QUANTUM, rounding=ROUND_HALF_EVEN)


def job_credits(*, core_hours: Decimal, rate: Decimal) -> Decimal:
    """Credits for a finished job: billed core-hours at its compute's rate."""
    return credits_round(core_hours * rate)


def query_credits(*, model: PriceModel, input_tokens: int, output_tokens: int) -> Decimal:
    """Credits for one query at the model's per-million input and output prices."""
    return credits_round(
        (
            input_tokens * model.input_price_per_million
            + output_tokens * model.output_price_per_million
        )
        / _MILLION
    )


def worker_session_credits(
    *, model: PriceModel, started_at: datetime, ended_at: datetime
) -> Decimal:
    """Credits for a worker session: the model's worker-hour rate × exact hours."""
    return credits_round(model.worker_hour_rate * hours_between(started_at, ended_at))
