"""Account calls on the default client, named as in the reference SDK:
`account.get_credits_balance()`, `account.add_credits(200)`, ..."""

from typing import Any

from usage_console_client.auth import default_client
from usage_console_client.models import Account, CreditBalance, ModelQueries, ModelRuntime, Payment


def get_account() -> Account:
    return default_client().get_account()


def get_credits_balance() -> CreditBalance:
    return default_client().get_credits_balance()


def add_credits(amount: Any, **kwargs: Any) -> Payment:
    return default_client().add_credits(amount, **kwargs)


def get_worker_sessions(start_date: int, end_date: int) -> list[ModelRuntime]:
    return default_client().get_worker_sessions(start_date, end_date)


def get_queries_per_model(start_date: int, end_date: int) -> list[ModelQueries]:
    return default_client().get_queries_per_model(start_date, end_date)
