"""One usage record's fields, checked and typed: ids, names, quantities and times, each
refusal a FieldError naming the field (the wire shape is docs/api.md's contract). No
database work beyond the price list and controllers loaded once per batch."""

import math
import zoneinfo
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from django.conf import settings
from django.utils import timezone

from accounts.models import Organization
from billing.models import CREDIT_PLACES, PriceModel
from core.calendar import local_month_start
from core.errors import FieldError
from core.text import invisible_character, invisible_character_message
from usage.limits import MAX_CORE_HOURS, MAX_CORES, MAX_NUM_RECORDS, MAX_TOKENS
from usage.members import member_attributed
from usage.models import (
    TERMINAL_JOB_STATUSES,
    Controller,
    JobStatus,
    MatchingTask,
)
from usage.pricing import (
    PriceBook,
    query_credits,
    seconds_between,
    worker_session_credits,
)
from usage.text import encodable

_MAX_INT = 2**62
# Looked up per record: an enum's .values builds a new list each time it is read.
_TASKS = frozenset(MatchingTask.values)
_JOB_STATUSES = frozenset(JobStatus.values)


# Bounds that keep every stored figure and every rollup sum of it inside its column:
# usage/limits.py says how they were chosen.
_MAX_TOKENS = MAX_TOKENS


# The read API's ranges start at the Unix epoch; older times also overflow day
# arithmetic in time zones east of UTC.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


_MAX_CORES = MAX_CORES


def max_future_skew() -> timedelta:
    """How far ahead of the server's clock a record's time may be (clock skew)."""
    return timedelta(seconds=settings.USAGE_MAX_FUTURE_SECONDS)


_MISSING = object()


def _get(record: dict, name: str, *, required: bool = True) -> Any:
    value = record.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise FieldError(name, "is required")
        return None
    return value


def _integer(
    record: dict, name: str, *, minimum: int = 0, maximum: int = _MAX_INT, required: bool = True
) -> int | None:
    value = _get(record, name, required=required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(name, f"must be an integer, not {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FieldError(name, "must be a finite number")
        if not value.is_integer():
            raise FieldError(name, "must be a whole number")
        value = int(value)
    if value < minimum:
        raise FieldError(
            name, "must not be negative" if minimum == 0 else f"must be at least {minimum}"
        )
    if value > maximum:
        raise FieldError(name, f"is too large (at most {maximum:,})")
    return value


def _quantity(record: dict, name: str) -> Decimal | None:
    value = _get(record, name, required=False)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(name, f"must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldError(name, "must be a finite number")
    if value < 0:
        raise FieldError(name, "must not be negative")
    if value > MAX_CORE_HOURS:
        raise FieldError(name, f"is too large (at most {MAX_CORE_HOURS:,})")
    return Decimal(str(value))


def storable_text_check(name: str, value: str) -> None:
    """Refuse text no database column can hold: NUL (PostgreSQL refuses it) and lone
    surrogates from JSON escapes like "\\ud800" (not encodable as UTF-8)."""
    if "\x00" in value:
        raise FieldError(name, "must not contain NUL characters")
    if not encodable(value):
        raise FieldError(name, "must be valid Unicode text (no lone surrogates)")
    # Names reach pages, CSV and email headers: no CR/LF, bidi overrides, zero-widths.
    refused = invisible_character(value)
    if refused is not None:
        raise FieldError(name, invisible_character_message(refused))


def text_field(record: dict, name: str, *, max_length: int, required: bool = True) -> str | None:
    value = _get(record, name, required=required)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError(name, f"must be a string, not {type(value).__name__}")
    storable_text_check(name, value)
    if required and not value.strip():
        raise FieldError(name, "must not be empty")
    if len(value) > max_length:
        raise FieldError(name, f"must be at most {max_length} characters")
    return value


def record_time(value: Any, *, field: str, latest: datetime) -> datetime:
    """An ISO 8601 time with a zone, as UTC, between 1970 and `latest` (now plus the
    allowed clock skew); FieldError naming `field` otherwise. Records and job steps (the
    API's transitions) are read by this one rule."""
    if not isinstance(value, str):
        raise FieldError(field, f"must be an ISO 8601 time string, not {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(field, "must be an ISO 8601 time, e.g. 2026-11-20T10:00:00Z") from None
    if parsed.tzinfo is None:
        raise FieldError(field, "must carry a time zone (e.g. a trailing Z for UTC)")
    # Stored in UTC: ISO 8601 allows offsets up to ±23:59 that PostgreSQL refuses
    # (past ±15:59), and an instant whose UTC form falls outside years 1-9999 has none.
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        raise FieldError(field, "is out of range (it has no UTC time)") from None
    if parsed > latest:
        raise FieldError(field, "is in the future")
    if parsed < _EARLIEST:
        raise FieldError(field, "is before 1970-01-01T00:00:00Z")
    return parsed


class RecordContext:
    """What validation needs to know, loaded once per batch."""

    def __init__(self, *, org: Organization, prices: PriceBook, controllers: dict[str, Controller]):
        self.org = org
        self.prices = prices
        self.controllers = controllers
        self.now = timezone.now()
        self.latest = self.now + max_future_skew()
        self.zone = zoneinfo.ZoneInfo(org.time_zone or "UTC")
        # Per batch: what the fast path (query_values_fast) has already checked once.
        self._clean_texts: dict[str, bool] = {}
        self._clean_models: dict[str, PriceModel | None] = {}
        self._model_prices: dict[int, tuple[int, int] | None] = {}
        self._months: dict[datetime, datetime] = {}

    def time(self, record: dict, name: str, *, required: bool = True) -> datetime | None:
        value = _get(record, name, required=required)
        if value is None:
            return None
        return record_time(value, field=name, latest=self.latest)

    def model(self, record: dict) -> PriceModel:
        name = text_field(record, "model", max_length=100)
        model = self.prices.models.get(name)  # type: ignore[arg-type]
        if model is None:
            raise FieldError("model", f"unknown model {name!r}: not on the price list")
        if not model.is_active:
            raise FieldError("model", f"model {name!r} is retired")
        return model

    def month_of(self, moment: datetime) -> datetime:
        # Zone offsets and their changes fall on quarter hours, so every instant of one
        # UTC quarter hour lies in the same local month.
        quarter = moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)
        month = self._months.get(quarter)
        if month is None:
            month = self._months[quarter] = local_month_start(moment, tz=self.zone)
        return month

    def clean_text(self, value: str) -> bool:
        """Whether storable_text_check passes (remembered: members and endpoints repeat)."""
        known = self._clean_texts.get(value)
        if known is None:
            try:
                storable_text_check("text", value)
                known = True
            except FieldError:
                known = False
            if len(self._clean_texts) < 10_000:
                self._clean_texts[value] = known
        return known

    def clean_model(self, name: str) -> PriceModel | None:
        """The active price-list model of that name when `model` would accept it as is."""
        if name not in self._clean_models:
            try:
                self._clean_models[name] = self.model({"model": name})
            except FieldError:
                self._clean_models[name] = None
        return self._clean_models[name]

    def query_credits(self, model: PriceModel, input_tokens: int, output_tokens: int) -> Decimal:
        """usage.pricing.query_credits in integers: prices have CREDIT_PLACES (10) decimal
        places, so credits are (tokens × price units) / 10**6 rounded half-even, exactly."""
        if model.pk not in self._model_prices:
            self._model_prices[model.pk] = _price_units(model)
        units = self._model_prices[model.pk]
        if units is None:
            return query_credits(
                model=model, input_tokens=input_tokens, output_tokens=output_tokens
            )
        total = input_tokens * units[0] + output_tokens * units[1]
        whole, rest = divmod(total, 1_000_000)
        if rest * 2 > 1_000_000 or (rest * 2 == 1_000_000 and whole % 2):
            whole += 1
        return Decimal(whole).scaleb(-CREDIT_PLACES)


def _price_units(model: PriceModel) -> tuple[int, int] | None:
    """The model's token prices in units of 10**-CREDIT_PLACES credits (None if a price
    has more places than that, which the column does not allow)."""
    units = []
    for price in (model.input_price_per_million, model.output_price_per_million):
        scaled = Decimal(price).scaleb(CREDIT_PLACES)
        if scaled != scaled.to_integral_value():
            return None
        units.append(int(scaled))
    return units[0], units[1]


def _ordered(start: datetime, end: datetime, *, end_field: str, start_field: str) -> None:
    if end < start:
        raise FieldError(end_field, f"must not be before {start_field}")


class QueryWire(msgspec.Struct):
    """A query record whose every field has its wire type and bounds (checked in C by
    msgspec); anything else goes the field-by-field way, which names the field."""

    occurred_at: str
    model: Annotated[str, msgspec.Meta(max_length=100)]
    input_tokens: Annotated[int, msgspec.Meta(ge=0, le=_MAX_TOKENS)]
    output_tokens: Annotated[int, msgspec.Meta(ge=0, le=_MAX_TOKENS)]
    endpoint: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    member: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    reservation: Annotated[str, msgspec.Meta(max_length=40)] | None = None


def query_values_fast(
    ctx: RecordContext, record: dict, default_member: str
) -> tuple[dict, Decimal, int, str] | None:
    """What query_values returns (and the reservation) for a query every check accepts,
    else None: then query_values says which field is wrong. The two agree on every
    record this one accepts: same checks, same values, credits computed in integers."""
    try:
        wire = msgspec.convert(record, QueryWire)
    except msgspec.ValidationError:
        return None
    model = ctx.clean_model(wire.model)
    if model is None:
        return None
    try:
        occurred_at = record_time(wire.occurred_at, field="occurred_at", latest=ctx.latest)
    except FieldError:
        return None
    endpoint, member, reservation = wire.endpoint or "", wire.member, wire.reservation or ""
    if not ctx.clean_text(endpoint) or not ctx.clean_text(reservation):
        return None
    if member is not None and not ctx.clean_text(member):
        return None
    input_tokens, output_tokens = wire.input_tokens, wire.output_tokens
    values = {
        "model": model,
        "occurred_at": occurred_at,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "endpoint": endpoint,
        "member": member_attributed(owner=default_member, named=member or ""),
    }
    credits = ctx.query_credits(model, input_tokens, output_tokens)
    return values, credits, input_tokens + output_tokens, reservation


def query_values(
    ctx: RecordContext, record: dict, default_member: str
) -> tuple[dict, Decimal, int]:
    occurred_at = ctx.time(record, "occurred_at")
    model = ctx.model(record)
    input_tokens = _integer(record, "input_tokens", maximum=_MAX_TOKENS)
    output_tokens = _integer(record, "output_tokens", maximum=_MAX_TOKENS)
    endpoint = text_field(record, "endpoint", max_length=200, required=False) or ""
    named = text_field(record, "member", max_length=254, required=False) or ""
    assert input_tokens is not None and output_tokens is not None
    values = {
        "model": model,
        "occurred_at": occurred_at,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "endpoint": endpoint,
        "member": member_attributed(owner=default_member, named=named),
    }
    credits = query_credits(model=model, input_tokens=input_tokens, output_tokens=output_tokens)
    return values, credits, input_tokens + output_tokens


def worker_session_values(ctx: RecordContext, record: dict) -> tuple[dict, Decimal]:
    model = ctx.model(record)
    started_at = ctx.time(record, "started_at")
    ended_at = ctx.time(record, "ended_at")
    assert started_at is not None and ended_at is not None
    _ordered(started_at, ended_at, end_field="ended_at", start_field="started_at")
    values = {
        "model": model,
        "started_at": started_at,
        "ended_at": ended_at,
        "runtime_seconds": seconds_between(started_at, ended_at),
    }
    credits = worker_session_credits(model=model, started_at=started_at, ended_at=ended_at)
    return values, credits


def matching_values(ctx: RecordContext, record: dict) -> dict:
    task = text_field(record, "task", max_length=3)
    if task not in _TASKS:
        raise FieldError("task", f"must be one of {', '.join(MatchingTask.values)}")
    num_records = _integer(record, "num_records", maximum=MAX_NUM_RECORDS)
    started_at = ctx.time(record, "started_at")
    ended_at = ctx.time(record, "ended_at")
    assert started_at is not None and ended_at is not None
    _ordered(started_at, ended_at, end_field="ended_at", start_field="started_at")
    return {
        "task": task,
        "num_records": num_records,
        "started_at": started_at,
        "ended_at": ended_at,
        "run_time_seconds": seconds_between(started_at, ended_at),
    }


def job_values(ctx: RecordContext, record: dict) -> dict:
    status = text_field(record, "status", max_length=20)
    if status not in _JOB_STATUSES:
        raise FieldError("status", f"must be one of {', '.join(JobStatus.values)}")
    cores = _integer(record, "cores", minimum=1)
    assert cores is not None
    if cores > _MAX_CORES:
        raise FieldError("cores", f"is too large (at most {_MAX_CORES:,})")
    controller = None
    name = text_field(record, "controller", max_length=100, required=False)
    if name is not None:
        controller = ctx.controllers.get(name)
        if controller is None:
            raise FieldError("controller", f"no controller named {name!r} in this organization")
    submitted_at = ctx.time(record, "submitted_at", required=False)
    started_at = ctx.time(record, "started_at", required=status in {"running", "completed"})
    terminal = status in TERMINAL_JOB_STATUSES
    ended_at = ctx.time(record, "ended_at", required=terminal)
    core_hours = _quantity(record, "core_hours")
    if status == JobStatus.SUBMITTED and started_at is not None:
        raise FieldError("started_at", "a submitted job has not started yet")
    if not terminal and ended_at is not None:
        raise FieldError("ended_at", "only a finished job has ended_at")
    if not terminal and core_hours is not None:
        raise FieldError("core_hours", "core-hours are reported when the job ends")
    submitted_at = submitted_at or started_at or ended_at or ctx.now
    if started_at is not None:
        _ordered(submitted_at, started_at, end_field="started_at", start_field="submitted_at")
    if ended_at is not None:
        _ordered(
            started_at or submitted_at,
            ended_at,
            end_field="ended_at",
            start_field="started_at" if started_at else "submitted_at",
        )
    return {
        "status": status,
        "cores": cores,
        "controller": controller,
        "submitted_at": submitted_at,
        "started_at": started_at,
        "ended_at": ended_at,
        "core_hours": core_hours,
    }
