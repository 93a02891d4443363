"""What a batch carries through ingestion's phases (ingest/services/ingest.py): its
candidates, what is stored of them, what is decided, and the result the caller gets."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Model

from usage.models import (
    Job,
    MatchingRun,
    Query,
    WorkerSession,
)

MAX_BATCH_RECORDS = 1000
KINDS = ("query", "worker_session", "matching", "job")


# Results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    index: int
    id: str | None
    field: str | None
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "field": self.field, "error": self.error}


@dataclass
class IngestResult:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    credits: Decimal = Decimal("0")
    batch_id: int | None = None
    # Tokens of the accepted queries (what the tokens-per-minute limit counts).
    tokens: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [r.as_dict() for r in self.rejected],
            "credits": format(self.credits.normalize(), "f"),
            "batch": self.batch_id,
        }


@dataclass(slots=True)
class Candidate:
    index: int
    kind: str
    client_id: str
    values: dict[str, Any]
    credits: Decimal = Decimal("0")
    tokens: int = 0
    month: datetime | None = None  # queries: start of their calendar month (org time)
    reservation: str = ""  # queries: the authorization they settle (spend controls)


MODELS: dict[str, type[Model]] = {
    "query": Query,
    "worker_session": WorkerSession,
    "matching": MatchingRun,
    "job": Job,
}


@dataclass
class Batch:
    """One batch on its way through the phases: the candidates by kind and id, and the
    order records came in (index, kind, id)."""

    candidates: dict[str, dict[str, Candidate]]
    order: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass
class Stored:
    """What the organization already holds of the batch's ids (read under its lock)."""

    jobs: dict[str, Job] = field(default_factory=dict)
    ids: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class Decision:
    """What the batch writes: new records by kind, forward job moves, and the total."""

    new: dict[str, list[Candidate]] = field(default_factory=lambda: defaultdict(list))
    job_updates: list[tuple[Job, Candidate]] = field(default_factory=list)
    total: Decimal = Decimal("0")
