"""Request and answer shapes of the ingestion API (they make the OpenAPI schema).

Credits and money are decimal strings ("12.5", never a float), as everywhere in the
console; times are ISO 8601 in UTC; the worker-runtime endpoints take and give Unix
milliseconds, as the reference SDK does.
"""

from typing import Literal

from ninja import Field, Schema

from billing.money import DECIMAL, DecimalStr
from core.api import ErrorOut
from ingest.services.ingest import MAX_BATCH_RECORDS
from usage.limits import MAX_CORE_HOURS, MAX_CORES, MAX_MEMORY_GB, MAX_NUM_RECORDS, MAX_TOKENS

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


# Kept in the published schema (its shape is part of the API contract); no answer uses
# it any more (no class docstring: it would change the schema's description).
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


# --- Request bodies, documented (ingest/api/ingest.py parses them itself: the wire shape
# predates the schema, docs/api.md) ---------------------------------------------------
_TIME = {"type": "string", "format": "date-time", "examples": ["2026-11-20T10:00:00Z"]}
_RECORD = {
    "type": "object",
    "required": ["id", "kind"],
    "description": (
        "One usage record. Fields by kind: query (occurred_at, model, input_tokens, "
        "output_tokens, endpoint?, member?, reservation?); worker_session (model, started_at, "
        "ended_at); "
        "matching (task IDR|CDM, num_records, started_at, ended_at); job (status, cores, "
        "controller?, submitted_at, started_at?, ended_at?, core_hours?). A record with a "
        "bad field is rejected alone, naming the field; the others are stored."
    ),
    "properties": {
        "id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": (
                "Unique per organization and kind. No control, bidirectional-override or "
                "zero-width characters; a job's id has no '/'."
            ),
        },
        "kind": {"type": "string", "enum": ["query", "worker_session", "matching", "job"]},
        "occurred_at": _TIME,
        "started_at": _TIME,
        "ended_at": _TIME,
        "submitted_at": _TIME,
        "model": {"type": "string", "examples": ["llama-3.1-8b"]},
        "input_tokens": {"type": "integer", "minimum": 0, "maximum": MAX_TOKENS},
        "output_tokens": {"type": "integer", "minimum": 0, "maximum": MAX_TOKENS},
        "endpoint": {"type": "string"},
        "member": {"type": "string"},
        "reservation": {
            "type": "string",
            "maxLength": 40,
            "description": (
                "query only: the reservation POST /api/v1/usage/authorize gave; the record "
                "settles it at its real cost"
            ),
        },
        "task": {"type": "string", "enum": ["IDR", "CDM"]},
        "num_records": {"type": "integer", "minimum": 0, "maximum": MAX_NUM_RECORDS},
        "status": {
            "type": "string",
            "enum": ["submitted", "running", "completed", "failed", "cancelled"],
        },
        "cores": {"type": "integer", "minimum": 1, "maximum": MAX_CORES},
        "controller": {"type": "string"},
        "core_hours": {"type": "number", "minimum": 0, "maximum": int(MAX_CORE_HOURS)},
    },
}
RECORDS_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["records"],
                "properties": {
                    "records": {"type": "array", "maxItems": MAX_BATCH_RECORDS, "items": _RECORD}
                },
            }
        }
    },
}
JOB_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["id", "cores"],
                "description": "A job record; status defaults to submitted.",
                "properties": {
                    key: _RECORD["properties"][key]
                    for key in (
                        "id",
                        "status",
                        "cores",
                        "controller",
                        "submitted_at",
                        "started_at",
                        "ended_at",
                        "core_hours",
                    )
                },
            }
        }
    },
}
TRANSITION_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": _RECORD["properties"]["status"],
                    "at": {**_TIME, "description": "When it happened (default: now)."},
                    "core_hours": {"type": "number", "minimum": 0, "maximum": int(MAX_CORE_HOURS)},
                },
            }
        }
    },
}
HEARTBEAT_BODY = {
    "required": False,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "cores": {"type": "integer", "minimum": 1, "maximum": MAX_CORES},
                    "memory_gb": {"type": "integer", "minimum": 0, "maximum": MAX_MEMORY_GB},
                },
            }
        }
    },
}
