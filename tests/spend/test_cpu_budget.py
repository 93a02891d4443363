"""Tokenizing is the expensive part of authorize and estimate: a key already over its rate
is refused before any message is tokenized, and one request's tokenizing has a size and a
time budget (413 naming the limit, nothing reserved)."""

import pytest

from spend.models import Reservation
from tests.spend.conftest import post

pytestmark = pytest.mark.django_db

AUTHORIZE = "/api/v1/usage/authorize"
ESTIMATE = "/api/v1/usage/estimate"


@pytest.fixture
def tokenized(monkeypatch):
    """Every text the tokenizer is handed, by length."""
    from spend import estimate

    seen: list[int] = []
    real = estimate.estimate_tokens

    def spy(text: str, *args, **kwargs) -> int:
        seen.append(len(text))
        return real(text, *args, **kwargs)

    monkeypatch.setattr(estimate, "estimate_tokens", spy)
    return seen


def _ask(client, secret: str, content: str, path: str = AUTHORIZE):
    body = {"model": "llama-3.1-8b", "messages": [{"role": "user", "content": content}]}
    return post(client, path, body, secret)


def test_a_key_over_its_requests_is_refused_before_its_messages_are_tokenized(
    client, spend, tokenized
):
    spend.key.rate_limit_rpm = 2
    spend.key.save()
    assert _ask(client, spend.key_secret, "hi").status_code == 200
    assert _ask(client, spend.key_secret, "hi").status_code == 200
    tokenized.clear()
    response = _ask(client, spend.key_secret, " " * 500_000)
    assert response.status_code == 429
    assert response.json()["reason"] == "rate_limit_requests"
    assert tokenized == []


def test_a_key_whose_tokens_are_spent_is_refused_before_tokenizing(client, spend, tokenized):
    spend.key.rate_limit_tpm = 600
    spend.key.save()
    body = {"model": "llama-3.1-8b", "input_tokens": 100, "max_output_tokens": 500}
    assert post(client, AUTHORIZE, body, spend.key_secret).status_code == 200
    tokenized.clear()
    response = _ask(client, spend.key_secret, "x " * 200_000)
    assert response.status_code == 429
    assert response.json()["reason"] == "rate_limit_tokens"
    assert tokenized == []


@pytest.mark.parametrize("path", [AUTHORIZE, ESTIMATE])
def test_messages_past_the_tokenizing_size_are_413_naming_the_limit(
    client, spend, settings, tokenized, path
):
    settings.SPEND_TOKENIZE_MAX_CHARS = 1000
    response = _ask(client, spend.key_secret, "a" * 1001, path)
    assert response.status_code == 413, response.content
    data = response.json()
    assert data["field"] == "messages"
    assert "1,000 characters" in data["message"]
    assert tokenized == []
    assert Reservation.objects.count() == 0
    assert _ask(client, spend.key_secret, "a" * 1000, path).status_code == 200


@pytest.mark.parametrize("path", [AUTHORIZE, ESTIMATE])
def test_tokenizing_past_its_time_budget_is_413_naming_it(client, spend, settings, path):
    settings.SPEND_TOKENIZE_SECONDS = 0.0
    response = _ask(client, spend.key_secret, "word " * 20_000, path)
    assert response.status_code == 413, response.content
    assert response.json()["field"] == "messages"
    assert "0.0 s" in response.json()["message"]
    assert Reservation.objects.count() == 0


def test_a_long_text_counts_the_same_tokens_in_pieces():
    from spend.estimate import message_tokens

    # 10 tokens a line ("The", " quick", ..., " dog", ".\n"), 225,000 characters in all:
    # tokenized in pieces, the count is the one of the whole text.
    text = "The quick brown fox jumps over the lazy dog.\n" * 5000
    assert message_tokens([{"role": "user", "content": text}]) == 10 * 5000 + 4
