"""Request and answer shapes of the API (they make the OpenAPI schema).

Credits and money are decimal strings ("12.5", never a float), as everywhere in the
console; times are ISO 8601 in UTC; the worker-runtime endpoints take and give Unix
milliseconds, as the reference SDK does.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from ninja import Field, Schema
from pydantic import field_validator

DecimalStr = str  # a decimal number as a string, e.g. "0.0000025"
DECIMAL = {"format": "decimal", "examples": ["12.5"]}


def decimal_str(value: Decimal) -> str:
    """A decimal as a plain string without exponent or trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in {"-0", ""} else text


class ErrorOut(Schema):
    error: str = Field(description="A stable code, e.g. invalid_parameter, not_found.")
    message: str = Field(description="What went wrong, for a person.")
    field: str | None = Field(None, description="The parameter or body field at fault.")


class PageMeta(Schema):
    """Page-number pagination: ask for `page` (from 1) with `page_size` items."""

    count: int = Field(description="Items in the whole result.")
    page: int
    page_size: int
    pages: int = Field(description="Pages in the whole result (0 when it is empty).")
    next_page: int | None = Field(description="The next page's number, or null on the last.")
    previous_page: int | None


# --- Ingestion and jobs (the write API) ------------------------------------------------


class RejectedRecordOut(Schema):
    index: int = Field(description="Position of the record in the batch, from 0.")
    id: str | None = Field(description="The record's id, when it had a usable one.")
    field: str | None = Field(description="The field at fault.")
    error: str


class IngestOut(Schema):
    accepted: list[str] = Field(description="Ids stored by this call.")
    duplicates: list[str] = Field(description="Ids already stored: nothing changed.")
    rejected: list[RejectedRecordOut]
    credits: DecimalStr = Field(
        description="Credits this batch was charged.", json_schema_extra=DECIMAL
    )
    batch: int | None = Field(description="The ingest batch's id (null when nothing was stored).")


class IngestRefusedOut(IngestOut):
    error: str
    message: str


class JobOut(Schema):
    id: str
    status: Literal["submitted", "running", "completed", "failed", "cancelled"]
    cores: int
    controller: str | None
    compute: Literal["managed", "controller"]
    submitted_at: str | None
    started_at: str | None
    ended_at: str | None
    core_hours: DecimalStr = Field(json_schema_extra=DECIMAL)
    credits: DecimalStr = Field(json_schema_extra=DECIMAL)


class JobConflictOut(ErrorOut):
    job: JobOut


class HeartbeatOut(Schema):
    name: str
    online: bool
    cores: int
    memory_gb: int
    last_heartbeat_at: str | None


# --- Account ---------------------------------------------------------------------------


class AccountOut(Schema):
    organization_id: int
    name: str
    slug: str
    tier: str
    time_zone: str
    monthly_token_allocation: int | None
    credential: Literal["api_key", "session_token"]


class RemainingUsageTimeOut(Schema):
    """Total runtime across all workers: 4 days means 1 day for 4 workers in parallel."""

    worker_type: str = Field(description="The default worker type the estimate is based on.")
    hourly_rate: DecimalStr = Field(json_schema_extra=DECIMAL)
    total_hours: int = Field(description="Whole hours, rounded down.")
    days: int
    hours: int


class CreditBalanceOut(Schema):
    organization_id: int
    credits: DecimalStr = Field(description="Available credits.", json_schema_extra=DECIMAL)
    estimated_remaining_usage_time: RemainingUsageTimeOut | None = Field(
        description="Null when no default worker type is priced."
    )
    last_payment_at: datetime | None = Field(description="The last successful payment.")
    last_payment_date: date | None = Field(description="Its date in the organization's zone.")


class CardIn(Schema):
    number: str = Field(description="Sandbox test cards: 4242 4242 4242 4242 succeeds.")
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(ge=2000, le=2200)
    cvc: str = Field(min_length=3, max_length=4)


class AddCreditsIn(Schema):
    credits: Decimal = Field(
        gt=0,
        le=1_000_000,
        description="Credits to buy (one credit is one US dollar unless configured otherwise).",
    )
    payment_method_id: int | None = Field(
        None,
        description="A saved card of the organization (default: the auto-recharge card, "
        "else the newest saved card).",
    )
    card: CardIn | None = Field(None, description="A card to charge once instead of a saved one.")


class PaymentOut(Schema):
    payment_id: int
    status: Literal[
        "succeeded", "pending", "declined", "failed", "requires_confirmation", "refunded"
    ]
    amount: DecimalStr = Field(description="Charged, in the currency.", json_schema_extra=DECIMAL)
    currency: str
    credits: DecimalStr = Field(description="Credits bought.", json_schema_extra=DECIMAL)
    credit_balance: DecimalStr = Field(description="Balance after.", json_schema_extra=DECIMAL)
    message: str = Field(description="Why it was declined or failed; empty on success.")
    checkout_url: str | None = Field(
        description="Where to pay when the provider uses a hosted checkout (status pending)."
    )


class WorkerSessionOut(Schema):
    id: str = Field(description="The session's record id (as the client sent it).")
    model: str
    started_at: datetime
    ended_at: datetime
    runtime_seconds: float = Field(description="Runtime inside the requested range.")
    credits: DecimalStr = Field(
        description="What the whole session was charged.", json_schema_extra=DECIMAL
    )


class ModelRuntimeOut(Schema):
    model: str
    runtime_seconds: float = Field(description="Runtime inside the range, all sessions.")
    sessions: int


class WorkerSessionsOut(PageMeta):
    start_date: int = Field(description="Range start, Unix milliseconds (inclusive).")
    end_date: int = Field(description="Range end, Unix milliseconds (exclusive).")
    total_runtime_seconds: float
    detail_notice: str | None = Field(
        None,
        description="Set when the range reaches back before the records still kept "
        "(retention dropped older months): items are missing for those days, totals are not.",
    )
    models: list[ModelRuntimeOut] = Field(
        description="Runtime per model over the whole range (one row per model, not paged)."
    )
    items: list[WorkerSessionOut] = Field(description="This page of the sessions, oldest first.")


class ModelQueriesOut(Schema):
    model: str
    queries: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    credits: DecimalStr = Field(json_schema_extra=DECIMAL)


class QueriesPerModelOut(PageMeta):
    start_date: int
    end_date: int
    total_queries: int
    total_tokens: int
    total_credits: DecimalStr = Field(json_schema_extra=DECIMAL)
    items: list[ModelQueriesOut]


# --- Session tokens --------------------------------------------------------------------


class SessionTokenIn(Schema):
    organization: str = Field(description="The organization's slug (you must be a member).")
    name: str = Field("", max_length=100, description="A label to recognise the token by.")

    @field_validator("organization", "name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class SessionTokenOut(Schema):
    id: int
    organization_id: int
    email: str
    name: str
    display: str = Field(description="The token's prefix and last four characters.")
    created_at: datetime
    expires_at: datetime
    renewed_at: datetime | None
    last_used_at: datetime | None


class IssuedSessionTokenOut(SessionTokenOut):
    token: str = Field(description="The secret: shown this once, store it safely.")


# --- Usage: LLM, matching, month to date -----------------------------------------------


class LLMUsageOut(Schema):
    id: int = Field(description="The ID of the usage statistic.")
    run_id: str = Field(description="The run (query) that contributed this usage: its record id.")
    job_id: int | None = Field(description="The job that contributed this usage (queries: null).")
    user_id: int | None = Field(description="The member the query was for, when known.")
    organization_id: int
    run_created_at: datetime
    run_time: int = Field(description="Duration of the run in seconds (queries are instants: 0).")
    credits: DecimalStr = Field(json_schema_extra=DECIMAL)
    input_tokens: int
    output_tokens: int
    model_id: str = Field(description="The model, as on the price list.")
    total_tokens: int
    endpoint: str
    member: str


class LLMUsageListOut(PageMeta):
    start_date: datetime | None
    end_date: datetime
    items: list[LLMUsageOut]
    detail_notice: str | None = Field(
        None,
        description="Set when the range reaches back before the records still kept "
        "(retention dropped older months): items are missing for those days, totals are not.",
    )


class LLMSummaryOut(Schema):
    organization_id: int
    credits: DecimalStr = Field(json_schema_extra=DECIMAL)
    start_date: datetime | None
    end_date: datetime
    queries: int
    input_tokens: int
    output_tokens: int
    total_tokens: int


class MatchingUsageOut(Schema):
    id: int
    run_id: str
    job_id: int | None
    user_id: int | None
    organization_id: int
    run_created_at: datetime
    run_time: int = Field(description="Duration of the run in seconds.")
    num_records: int
    task: Literal["IDR", "CDM"]


class MatchingUsageListOut(PageMeta):
    task: Literal["IDR", "CDM"] | None
    start_date: datetime | None
    end_date: datetime | None
    items: list[MatchingUsageOut]
    detail_notice: str | None = Field(
        None,
        description="Set when the range reaches back before the records still kept "
        "(retention dropped older months): items are missing for those days, totals are not.",
    )


class ModelTokensOut(Schema):
    model: str
    queries: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: DecimalStr = Field(description="Credits charged.", json_schema_extra=DECIMAL)


class MonthToDateOut(Schema):
    organization_id: int
    tier: str
    month_start: datetime
    as_of: datetime
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    allocation: int | None = Field(description="The tier's monthly tokens (null: unlimited).")
    remaining: int | None
    percent_used: float | None
    overage_allowed: bool
    cost: DecimalStr = Field(json_schema_extra=DECIMAL)
    models: list[ModelTokensOut] = Field(
        description="By model (one row per model on the price list, not paged)."
    )
