"""The served OpenAPI schema, the docs page, and a schema-driven fuzz run (schemathesis,
in-process over WSGI): no 5xx, every answer's status, content type, headers and body as
the schema says."""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Role, Tier
from accounts.services import session_token_issue
from tests.factories import (
    grant_credits,
    make_api_key,
    make_member,
    make_org,
    make_payment_method,
    make_query,
)

pytestmark = pytest.mark.django_db

READ_PATHS = {
    "/api/v1/account",
    "/api/v1/account/credits",
    "/api/v1/account/worker-sessions",
    "/api/v1/account/queries-per-model",
    "/api/v1/usage",
    "/api/v1/usage/llm",
    "/api/v1/usage/llm/{id}",
    "/api/v1/usage/llm/organization/{org_id}/summary",
    "/api/v1/usage/matching",
}
WRITE_PATHS = {
    "/api/v1/usage/records",
    "/api/v1/jobs",
    "/api/v1/jobs/{client_id}",
    "/api/v1/jobs/{client_id}/transition",
    "/api/v1/controllers/heartbeat",
}


def test_the_schema_is_served_and_lists_every_endpoint(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) >= READ_PATHS | WRITE_PATHS
    records = schema["paths"]["/api/v1/usage/records"]["post"]
    assert set(records["responses"]) >= {"200", "400", "401", "429"}
    assert "X-RateLimit-Remaining-RPM" in records["responses"]["200"]["headers"]
    assert "Retry-After" in records["responses"]["429"]["headers"]
    assert {"ApiKeyAuth", "SessionTokenAuth"} <= set(schema["components"]["securitySchemes"])
    llm = schema["paths"]["/api/v1/usage/llm"]["get"]
    assert {p["name"] for p in llm["parameters"]} == {
        "org_id", "start_date", "end_date", "page", "page_size"
    }  # fmt: skip


def test_the_schema_has_no_duplicate_keys(client):
    """Swagger UI refuses a document with a key twice (e.g. 400 as a number and a string)."""
    import json

    def unique(pairs):
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), keys
        return dict(pairs)

    json.loads(client.get("/api/v1/openapi.json").content, object_pairs_hook=unique)


def test_the_docs_page_loads_nothing_from_a_cdn(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "/static/ninja/swagger-ui.css" in html
    assert "cdn" not in html.lower() and "https://" not in html
    for asset in ("ninja/swagger-ui-bundle.js", "ninja/swagger-ui-init.js", "ninja/swagger-ui.css"):
        from django.contrib.staticfiles import finders

        assert finders.find(asset), asset


# Loaded at collection, in-process: Django is set up by then (pytest-django). Both
# valid and invalid data: invalid parameters and bodies must be 4xx, never a 5xx.
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json",
    get_wsgi_application(),
    config=SchemathesisConfig.from_dict({"generation": {"mode": "all"}}),
)


@pytest.fixture
def _one_db_connection():
    """Requests go straight to the WSGI handler, whose request signals would close the
    test's database connection; Django's own test client disconnects them the same way."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_credentials(_one_db_connection):
    org = make_org(tier=Tier.ENTERPRISE)
    grant_credits(org=org, amount="1000")
    make_payment_method(org=org)
    owner = make_member(org=org, role=Role.OWNER).user
    make_query(org=org, occurred_at=org.created_at, credits="0.5")
    _, key = make_api_key(org=org)
    token = session_token_issue(user=owner, org=org).secret
    return key, token


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_fuzz_the_api_against_its_schema(case, fuzz_credentials):
    key, token = fuzz_credentials
    secret = key if case.path in WRITE_PATHS or case.path == "/api/v1/account" else token
    case.call_and_validate(
        headers={"Authorization": f"Bearer {secret}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
        ],
    )
