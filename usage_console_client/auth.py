"""Credentials and the console's address for the module-level functions (like the
reference SDK's `auth_local_state`). Environment: USAGE_CONSOLE_URL,
USAGE_CONSOLE_API_KEY, USAGE_CONSOLE_SESSION_TOKEN."""

import os

from usage_console_client.client import DEFAULT_BASE_URL, Client

_default: Client | None = None


def default_client() -> Client:
    """The client the module functions use (made from the environment at first use)."""
    global _default
    if _default is None:
        _default = Client(
            os.environ.get("USAGE_CONSOLE_URL", DEFAULT_BASE_URL),
            api_key=os.environ.get("USAGE_CONSOLE_API_KEY") or None,
            session_token=os.environ.get("USAGE_CONSOLE_SESSION_TOKEN") or None,
        )
    return _default


def set_session_token(token: str | None) -> None:
    """Use this account session token for reads (it expires after 30 days: renew it)."""
    default_client().session_token = token


def set_api_key(key: str | None) -> None:
    """Use this API key to send usage records and jobs (and for reads without a token)."""
    default_client().api_key = key


def set_base_url(url: str) -> None:
    """Where the console runs, e.g. https://console.example.com."""
    default_client().base_url = url.rstrip("/")


def reset() -> None:
    """Forget the default client (the next call makes it again from the environment)."""
    global _default
    _default = None
