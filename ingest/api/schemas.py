"""Request and answer shapes of the ingestion API (they make the OpenAPI schema).

Credits and money are decimal strings ("12.5", never a float), as everywhere in the
console; times are ISO 8601 in UTC; the worker-runtime endpoints take and give Unix
milliseconds, as the reference SDK does.
"""

from typing import Literal

from ninja import Field, Schema

from accounts.api_core import ErrorOut
from billing.money import DECIMAL, DecimalStr

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
