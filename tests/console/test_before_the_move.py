"""The restructure of usage/ into apps changes where code lives, not what anyone sees: the
OpenAPI schema byte for byte, and the figures of the main page, the usage panel, Finance and
Explore on the demo, rendered to text before the move and compared after.

Temporary: this file and its copies (before_the_move/) go once the move has landed.
Regenerate the copies (only before a move) with UPDATE_BEFORE_THE_MOVE=1.
"""

import os
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
import time_machine

from accounts.models import User
from console.demo import demo_seed

pytestmark = pytest.mark.django_db

COPIES = Path(__file__).parent / "before_the_move"
UPDATE = os.environ.get("UPDATE_BEFORE_THE_MOVE") == "1"
NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
PAGES = {
    "main": "/o/{slug}/",
    "panel": "/o/{slug}/usage/",
    "finance": "/o/{slug}/finance/",
    "explore": "/o/{slug}/usage/explore/",
    "explore_keys": "/o/{slug}/usage/explore/?metric=core_hours&group_by=api_key&bucket=1h",
}


class _Text(HTMLParser):
    """The text a reader sees: no scripts, styles or hidden form values."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.parts.append(" ".join(data.split()))


def _text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "\n".join(parser.parts) + "\n"


def _same_as_copy(name: str, content: bytes) -> None:
    copy = COPIES / name
    if UPDATE:
        copy.write_bytes(content)
    assert copy.exists(), f"no copy of {name} taken before the move"
    assert content == copy.read_bytes(), f"{name} differs from before the move"


def test_the_openapi_schema_is_byte_for_byte_the_same(client):
    _same_as_copy("openapi.json", client.get("/api/v1/openapi.json").content)


def test_every_figure_of_the_main_pages_is_the_same_on_the_demo(client):
    with time_machine.travel(NOW, tick=False):
        logins = demo_seed(days=3)
        client.force_login(User.objects.get(email=logins.email))
        for name, address in PAGES.items():
            response = client.get(address.format(slug=logins.organization.slug))
            assert response.status_code == 200, name
            text = re.sub(r"[0-9a-f]{32,}", "<token>", _text(response.content.decode()))
            # Database ids differ between runs; what is shown of them is not a figure.
            text = re.sub(r"\b([a-z-]+):\d+\b", r"\1:<id>", text)
            _same_as_copy(f"{name}.txt", text.encode())
