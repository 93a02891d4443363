"""Spend controls: the estimator, the gateway's pre-request check, budgets, key pause.

    import usage_console_client as console

    console.estimate_request_cost(messages, model="llama-3.1-8b", max_output_tokens=500)
    # {"estimated_input_tokens": 17, "max_output_tokens": 500, "estimated_cost": "0.0000517"}

    verdict = console.authorize_request("llama-3.1-8b", messages=messages)  # API key
    if verdict["allowed"]:
        ...  # serve, then send the record with "reservation": verdict["reservation"]
    else:
        verdict["reason"]  # budget_exceeded, insufficient_balance, rate_limit_requests, ...

Every function takes an optional `client` (default: the module's default client).
"""

from typing import Any

from usage_console_client.auth import default_client
from usage_console_client.client import Client
from usage_console_client.errors import APIError


def _client(client: Client | None) -> Client:
    return client or default_client()


def estimate_request_cost(
    messages: list[dict[str, str]],
    model: str = "llama-3.1-8b",
    max_output_tokens: int = 500,
    *,
    client: Client | None = None,
) -> dict[str, Any]:
    """As the reference's estimate_request_cost, priced by the console's price list:
    cl100k_base tokens + 4 per message, and the cost of those and of max_output_tokens."""
    body = {"model": model, "messages": messages, "max_output_tokens": max_output_tokens}
    return _client(client).request("POST", "/usage/estimate", body=body)[2]


def authorize_request(
    model: str,
    *,
    messages: list[dict[str, str]] | None = None,
    input_tokens: int | None = None,
    max_output_tokens: int = 500,
    member: str | None = None,
    endpoint: str | None = None,
    client: Client | None = None,
) -> dict[str, Any]:
    """Ask before serving (API key). Returns the answer: {"allowed": True, "reservation",
    "estimated_cost", "expires_at"} or {"allowed": False, "reason", "limit",
    "retry_after"} (402 money, 429 rate); other errors raise."""
    body: dict[str, Any] = {"model": model, "max_output_tokens": max_output_tokens}
    if messages is not None:
        body["messages"] = messages
    if input_tokens is not None:
        body["input_tokens"] = input_tokens
    if member is not None:
        body["member"] = member
    if endpoint is not None:
        body["endpoint"] = endpoint
    try:
        return _client(client).request("POST", "/usage/authorize", body=body, use="api_key")[2]
    except APIError as exc:
        if exc.status in (402, 429) and isinstance(exc.body, dict) and "allowed" in exc.body:
            return exc.body
        raise


def list_budgets(*, client: Client | None = None) -> list[dict[str, Any]]:
    """Budgets with spent, reserved, left, resets_at and projected."""
    return _client(client).request("GET", "/budgets")[2]["budgets"]


def create_budget(*, client: Client | None = None, **fields: Any) -> dict[str, Any]:
    """scope, period, soft_limit, hard_limit?, api_key? (id), member?, thresholds?:
    an owner's or admin's session token."""
    return _client(client).request("POST", "/budgets", body=fields, use="session")[2]


def update_budget(budget_id: int, *, client: Client | None = None, **changes: Any) -> dict:
    return _client(client).request("PATCH", f"/budgets/{budget_id}", body=changes, use="session")[2]


def delete_budget(budget_id: int, *, client: Client | None = None) -> None:
    _client(client).request("DELETE", f"/budgets/{budget_id}", use="session")


def pause_key(key_id: int, *, client: Client | None = None) -> dict[str, Any]:
    """authorize answers 402 key_paused for the key until resume_key."""
    return _client(client).request("POST", f"/keys/{key_id}/pause", use="session")[2]


def resume_key(key_id: int, *, client: Client | None = None) -> dict[str, Any]:
    return _client(client).request("POST", f"/keys/{key_id}/resume", use="session")[2]
