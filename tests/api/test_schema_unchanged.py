"""The apps' move to one-way layers (each app owning its API) changes no byte of the
published schema: compared with the schema as served before the move."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

BEFORE = Path(__file__).with_name("openapi_before_the_move.json")


def test_the_openapi_schema_is_byte_for_byte_what_it_was_before_the_move(client):
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    assert served.content == BEFORE.read_bytes()
