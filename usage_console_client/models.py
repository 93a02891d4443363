"""Typed results: one dataclass per answer, built from the API's JSON.

Credits are `Decimal` (the API sends decimal strings), times are aware `datetime`s.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


@dataclass(frozen=True)
class RateLimit:
    """The X-RateLimit-* headers of the last answer (None where absent)."""

    limit_requests: int | None
    remaining_requests: int | None
    reset_requests: int | None
    limit_tokens: int | None
    remaining_tokens: int | None
    reset_tokens: int | None

    @classmethod
    def from_headers(cls, headers: dict[str, str]) -> "RateLimit":
        def get(name: str) -> int | None:
            value = headers.get(name)
            return int(value) if value is not None and value.lstrip("-").isdigit() else None

        return cls(
            get("X-RateLimit-Limit-RPM"),
            get("X-RateLimit-Remaining-RPM"),
            get("X-RateLimit-Reset-RPM"),
            get("X-RateLimit-Limit-TPM"),
            get("X-RateLimit-Remaining-TPM"),
            get("X-RateLimit-Reset-TPM"),
        )


@dataclass(frozen=True)
class Account:
    organization_id: int
    name: str
    slug: str
    tier: str
    time_zone: str
    monthly_token_allocation: int | None
    credential: str

    @classmethod
    def from_json(cls, data: dict) -> "Account":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class RemainingUsageTime:
    """Total runtime across all workers: 4 days means 1 day for 4 workers in parallel."""

    worker_type: str
    hourly_rate: Decimal
    total_hours: int
    days: int
    hours: int

    @property
    def duration(self) -> timedelta:
        return timedelta(hours=self.total_hours)


@dataclass(frozen=True, eq=False)
class CreditBalance:
    """The balance card. Compares with numbers by its credits, so the reference's
    `if get_credits_balance() < 100:` works."""

    organization_id: int
    credits: Decimal
    estimated_remaining_usage_time: RemainingUsageTime | None
    last_payment_at: datetime | None
    last_payment_date: date | None

    @classmethod
    def from_json(cls, data: dict) -> "CreditBalance":
        remaining = data.get("estimated_remaining_usage_time")
        last_date = data.get("last_payment_date")
        return cls(
            organization_id=data["organization_id"],
            credits=_dec(data["credits"]),
            estimated_remaining_usage_time=None
            if remaining is None
            else RemainingUsageTime(
                worker_type=remaining["worker_type"],
                hourly_rate=_dec(remaining["hourly_rate"]),
                total_hours=remaining["total_hours"],
                days=remaining["days"],
                hours=remaining["hours"],
            ),
            last_payment_at=_time(data.get("last_payment_at")),
            last_payment_date=date.fromisoformat(last_date) if last_date else None,
        )

    def _other(self, other: Any) -> Decimal:
        if isinstance(other, CreditBalance):
            return other.credits
        if isinstance(other, int | float | Decimal):
            return _dec(other)
        return NotImplemented  # type: ignore[return-value]

    def __eq__(self, other: object) -> bool:
        value = self._other(other)
        return NotImplemented if value is NotImplemented else self.credits == value

    def __hash__(self) -> int:
        return hash((self.organization_id, self.credits))

    def __lt__(self, other: Any) -> bool:
        value = self._other(other)
        return NotImplemented if value is NotImplemented else self.credits < value

    def __le__(self, other: Any) -> bool:
        value = self._other(other)
        return NotImplemented if value is NotImplemented else self.credits <= value

    def __gt__(self, other: Any) -> bool:
        value = self._other(other)
        return NotImplemented if value is NotImplemented else self.credits > value

    def __ge__(self, other: Any) -> bool:
        value = self._other(other)
        return NotImplemented if value is NotImplemented else self.credits >= value

    def __float__(self) -> float:
        return float(self.credits)


@dataclass(frozen=True)
class Payment:
    payment_id: int
    status: str
    amount: Decimal
    currency: str
    credits: Decimal
    credit_balance: Decimal
    message: str
    checkout_url: str | None
    replayed: bool = False  # the first answer to this Idempotency-Key, replayed

    @classmethod
    def from_json(cls, data: dict, *, replayed: bool = False) -> "Payment":
        return cls(
            payment_id=data["payment_id"],
            status=data["status"],
            amount=_dec(data["amount"]),
            currency=data["currency"],
            credits=_dec(data["credits"]),
            credit_balance=_dec(data["credit_balance"]),
            message=data.get("message", ""),
            checkout_url=data.get("checkout_url"),
            replayed=replayed,
        )


@dataclass(frozen=True)
class WorkerSession:
    id: str
    model: str
    started_at: datetime
    ended_at: datetime
    runtime: timedelta  # inside the requested range
    credits: Decimal

    @classmethod
    def from_json(cls, data: dict) -> "WorkerSession":
        return cls(
            id=data["id"],
            model=data["model"],
            started_at=_time(data["started_at"]),  # type: ignore[arg-type]
            ended_at=_time(data["ended_at"]),  # type: ignore[arg-type]
            runtime=timedelta(seconds=data["runtime_seconds"]),
            credits=_dec(data["credits"]),
        )


@dataclass(frozen=True)
class ModelRuntime:
    """A model's worker runtime in the range, with its sessions."""

    model: str
    runtime: timedelta
    session_count: int
    sessions: list[WorkerSession] = field(default_factory=list)


@dataclass(frozen=True)
class ModelQueries:
    model: str
    queries: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    credits: Decimal

    @classmethod
    def from_json(cls, data: dict) -> "ModelQueries":
        return cls(**{**data, "credits": _dec(data["credits"])})


@dataclass(frozen=True)
class LLMUsage:
    """One LLM usage statistic (a query), with the reference's fields."""

    id: int
    run_id: str
    job_id: int | None
    user_id: int | None
    organization_id: int
    run_created_at: datetime
    run_time: int
    credits: Decimal
    input_tokens: int
    output_tokens: int
    model_id: str
    total_tokens: int = 0
    endpoint: str = ""
    member: str = ""

    @classmethod
    def from_json(cls, data: dict) -> "LLMUsage":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["run_created_at"] = _time(data["run_created_at"])
        known["credits"] = _dec(data["credits"])
        return cls(**known)


@dataclass(frozen=True)
class LLMSummary:
    organization_id: int
    credits: Decimal
    start_date: datetime | None
    end_date: datetime
    queries: int
    input_tokens: int
    output_tokens: int
    total_tokens: int

    @classmethod
    def from_json(cls, data: dict) -> "LLMSummary":
        return cls(
            **{
                **data,
                "credits": _dec(data["credits"]),
                "start_date": _time(data["start_date"]),
                "end_date": _time(data["end_date"]),
            }
        )


@dataclass(frozen=True)
class MatchingUsage:
    id: int
    run_id: str
    job_id: int | None
    user_id: int | None
    organization_id: int
    run_created_at: datetime
    run_time: int
    num_records: int
    task: str

    @classmethod
    def from_json(cls, data: dict) -> "MatchingUsage":
        return cls(**{**data, "run_created_at": _time(data["run_created_at"])})


@dataclass(frozen=True)
class ModelTokens:
    model: str
    queries: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: Decimal


@dataclass(frozen=True)
class MonthToDateUsage:
    """This calendar month's tokens against the tier's allocation, by model, with cost."""

    organization_id: int
    tier: str
    month_start: datetime
    as_of: datetime
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    allocation: int | None
    remaining: int | None
    percent_used: float | None
    overage_allowed: bool
    cost: Decimal
    models: list[ModelTokens]

    @classmethod
    def from_json(cls, data: dict) -> "MonthToDateUsage":
        return cls(
            **{
                **data,
                "month_start": _time(data["month_start"]),
                "as_of": _time(data["as_of"]),
                "cost": _dec(data["cost"]),
                "models": [ModelTokens(**{**m, "cost": _dec(m["cost"])}) for m in data["models"]],
            }
        )


@dataclass(frozen=True)
class RejectedRecord:
    index: int
    id: str | None
    field: str | None
    error: str


@dataclass(frozen=True)
class IngestResult:
    accepted: list[str]
    duplicates: list[str]
    rejected: list[RejectedRecord]
    credits: Decimal
    batch: int | None

    @classmethod
    def from_json(cls, data: dict) -> "IngestResult":
        return cls(
            accepted=list(data["accepted"]),
            duplicates=list(data["duplicates"]),
            rejected=[RejectedRecord(**r) for r in data["rejected"]],
            credits=_dec(data["credits"]),
            batch=data.get("batch"),
        )


@dataclass(frozen=True)
class Job:
    id: str
    status: str
    cores: int
    controller: str | None
    compute: str
    submitted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    core_hours: Decimal
    credits: Decimal

    @classmethod
    def from_json(cls, data: dict) -> "Job":
        return cls(
            **{
                **data,
                "submitted_at": _time(data.get("submitted_at")),
                "started_at": _time(data.get("started_at")),
                "ended_at": _time(data.get("ended_at")),
                "core_hours": _dec(data["core_hours"]),
                "credits": _dec(data["credits"]),
            }
        )


@dataclass(frozen=True)
class SessionTokenInfo:
    id: int
    organization_id: int
    email: str
    name: str
    display: str
    created_at: datetime
    expires_at: datetime
    renewed_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_json(cls, data: dict) -> "SessionTokenInfo":
        known = {k: data[k] for k in cls.__dataclass_fields__}
        for name in ("created_at", "expires_at", "renewed_at", "last_used_at"):
            known[name] = _time(known[name])
        return cls(**known)


@dataclass(frozen=True)
class ReportGroup:
    """One group of a usage report: its dimensions' values, total, share and change."""

    group: dict[str, Any]
    label: str
    value: Decimal
    share_percent: Decimal | None
    previous: Decimal
    change_percent: Decimal | None
    # The groups past the report's 50 largest, added up ("Other (N groups)").
    other: bool = False


@dataclass(frozen=True)
class ReportBucket:
    start: datetime
    end: datetime
    # One value per group, keyed by the group's label.
    values: dict[str, Decimal]


@dataclass(frozen=True)
class UsageReport:
    """GET /usage/report: a metric per group and bucket, against the previous period."""

    metric: str
    unit: str
    start: datetime
    end: datetime
    time_zone: str
    bucket: str
    group_by: list[str]
    total: Decimal
    previous_total: Decimal
    change_percent: Decimal | None
    data_through: datetime | None
    live: bool
    groups: list[ReportGroup]
    buckets: list[ReportBucket] = field(default_factory=list)

    @classmethod
    def from_pages(cls, pages: list[dict]) -> "UsageReport":
        first = pages[0]

        def opt(value: Any) -> Decimal | None:
            return None if value is None else _dec(value)

        groups = [
            ReportGroup(
                group=g["group"],
                label=g["label"],
                value=_dec(g["value"]),
                share_percent=opt(g["share_percent"]),
                previous=_dec(g["previous"]),
                change_percent=opt(g["change_percent"]),
                other=g.get("other", False),
            )
            for g in first["groups"]
        ]
        labels = {tuple(sorted(g.group.items())): g.label for g in groups}
        buckets = [
            ReportBucket(
                start=_time(b["start"]),  # type: ignore[arg-type]
                end=_time(b["end"]),  # type: ignore[arg-type]
                values={
                    labels[tuple(sorted(v["group"].items()))]: _dec(v["value"]) for v in b["values"]
                },
            )
            for page in pages
            for b in page["buckets"]
        ]
        return cls(
            metric=first["metric"],
            unit=first["unit"],
            start=_time(first["start"]),  # type: ignore[arg-type]
            end=_time(first["end"]),  # type: ignore[arg-type]
            time_zone=first["time_zone"],
            bucket=first["bucket"],
            group_by=list(first["group_by"]),
            total=_dec(first["total"]),
            previous_total=_dec(first["previous_total"]),
            change_percent=opt(first["change_percent"]),
            data_through=_time(first["data_through"]),
            live=first["live"],
            groups=groups,
            buckets=buckets,
        )
