"""Answer shapes of the read API (they make the OpenAPI schema).

Credits and money are decimal strings ("12.5", never a float), as everywhere in the
console; times are ISO 8601 in UTC; the worker-runtime endpoints take and give Unix
milliseconds, as the reference SDK does.
"""

from datetime import datetime
from typing import Literal

from ninja import Field, Schema

from billing.money import DECIMAL, DecimalStr
from core.api import PageMeta

# --- Account ---------------------------------------------------------------------------


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
    allocation: int | None = Field(
        description="The tier's monthly tokens (null: unlimited, or a caller who sees only "
        "some of the organization's projects: the allocation counts every project's tokens)."
    )
    remaining: int | None
    percent_used: float | None
    overage_allowed: bool
    cost: DecimalStr = Field(json_schema_extra=DECIMAL)
    models: list[ModelTokensOut] = Field(
        description="By model (one row per model on the price list, not paged)."
    )
