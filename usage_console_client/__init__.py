"""Python client of the Usage Console API (standard library only).

    import usage_console_client as console

    console.set_base_url("http://127.0.0.1:8000")
    console.set_session_token("st-av-…")   # Settings → Session tokens; expires in 30 days
    credits = console.get_credits_balance()
    if credits < 100:
        console.add_credits(200)

    console.set_api_key("sk-av-…")          # Settings → API keys; sends usage
    console.submit_usage_records([{"id": "q-1", "kind": "query", ...}])

Or a `Client(base_url, api_key=..., session_token=...)` for several consoles at once.
Errors are exceptions (errors.py); results are dataclasses (models.py).
"""

from usage_console_client import account, usage
from usage_console_client.account import (
    add_credits,
    get_account,
    get_credits_balance,
    get_queries_per_model,
    get_worker_sessions,
)
from usage_console_client.auth import (
    default_client,
    reset,
    set_api_key,
    set_base_url,
    set_session_token,
)
from usage_console_client.client import Client
from usage_console_client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PaymentDeclinedError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    SessionTokenExpiredError,
    UnprocessableError,
    UsageConsoleError,
)
from usage_console_client.projects import (
    APIKeyInfo,
    Project,
    create_project,
    get_project,
    list_api_keys,
    list_projects,
    update_project,
)
from usage_console_client.spend import (
    authorize_request,
    create_budget,
    delete_budget,
    estimate_request_cost,
    list_budgets,
    pause_key,
    resume_key,
    update_budget,
)
from usage_console_client.usage import (
    get_job,
    get_llm,
    get_llm_organization_summary,
    get_month_to_date_usage,
    get_usage,
    get_usage_report,
    list_llm,
    list_llm_organization_summary,
    list_matching,
    submit_job,
    submit_usage_records,
    transition_job,
)


def get_session_token_info():
    """The session token in use: whose, and when it expires."""
    return default_client().get_session_token_info()


def renew_session_token():
    """Extend the session token in use to 30 days from now."""
    return default_client().renew_session_token()


def revoke_session_token() -> None:
    """Revoke the session token in use."""
    default_client().revoke_session_token()


__all__ = [
    "APIConnectionError",
    "APIKeyInfo",
    "Project",
    "create_project",
    "get_project",
    "list_api_keys",
    "list_projects",
    "update_project",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "NotFoundError",
    "PaymentDeclinedError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "SessionTokenExpiredError",
    "UnprocessableError",
    "UsageConsoleError",
    "account",
    "add_credits",
    "authorize_request",
    "create_budget",
    "default_client",
    "delete_budget",
    "estimate_request_cost",
    "get_account",
    "get_credits_balance",
    "get_job",
    "get_llm",
    "get_llm_organization_summary",
    "get_month_to_date_usage",
    "get_queries_per_model",
    "get_session_token_info",
    "get_usage",
    "get_usage_report",
    "get_worker_sessions",
    "list_budgets",
    "list_llm",
    "list_llm_organization_summary",
    "list_matching",
    "pause_key",
    "renew_session_token",
    "reset",
    "resume_key",
    "revoke_session_token",
    "set_api_key",
    "set_base_url",
    "set_session_token",
    "submit_job",
    "submit_usage_records",
    "transition_job",
    "update_budget",
    "usage",
]
