"""Usage calls on the default client, named as in the reference SDK:
`usage.list_llm()`, `usage.list_matching(task="IDR")`, ... and sending usage."""

from typing import Any

from usage_console_client.auth import default_client
from usage_console_client.models import (
    IngestResult,
    Job,
    LLMSummary,
    LLMUsage,
    MatchingUsage,
    MonthToDateUsage,
    UsageReport,
)


def list_llm(**kwargs: Any) -> list[LLMUsage]:
    return default_client().list_llm(**kwargs)


def get_llm(id: int) -> LLMUsage:  # `id`: the reference client's name
    return default_client().get_llm(id)


def get_llm_organization_summary(org_id: int, **kwargs: Any) -> LLMSummary:
    return default_client().get_llm_organization_summary(org_id, **kwargs)


def list_llm_organization_summary(org_id: int, **kwargs: Any) -> LLMSummary:
    """Deprecated alias of get_llm_organization_summary (warns, as the reference does)."""
    import warnings

    warnings.warn(
        "list_llm_organization_summary is deprecated; use get_llm_organization_summary "
        "for the same method",
        DeprecationWarning,
        stacklevel=2,
    )
    return default_client().get_llm_organization_summary(org_id, **kwargs)


def list_matching(**kwargs: Any) -> list[MatchingUsage]:
    return default_client().list_matching(**kwargs)


def get_month_to_date_usage() -> MonthToDateUsage:
    return default_client().get_month_to_date_usage()


get_usage = get_month_to_date_usage


def submit_usage_records(records: list[dict[str, Any]]) -> IngestResult:
    return default_client().submit_usage_records(records)


def submit_job(id: str, cores: int, **fields: Any) -> Job:
    return default_client().submit_job(id, cores, **fields)


def get_job(id: str) -> Job:
    return default_client().get_job(id)


def transition_job(id: str, status: str, **kwargs: Any) -> Job:
    return default_client().transition_job(id, status, **kwargs)


def get_usage_report(start: Any, end: Any, **kwargs: Any) -> UsageReport:
    """Usage over [start, end) grouped and bucketed: Usage → Explore's figures."""
    return default_client().get_usage_report(start, end, **kwargs)
