"""Request ids, JSON log lines, the 500 page and the probes, in-process."""

import io
import json
import logging
import logging.config
import re

import pytest
from django.conf import settings as django_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_log():
    """The console's JSON log configuration, written to a buffer instead of stdout."""
    buffer = io.StringIO()
    config = json.loads(json.dumps(django_settings.LOGGING, default=str))
    config["handlers"]["console"] = {
        "class": "logging.StreamHandler",
        "stream": buffer,
        "formatter": "json",
        "filters": ["context"],
    }
    logging.config.dictConfig(config)
    try:
        yield buffer
    finally:
        logging.config.dictConfig(django_settings.LOGGING)


def test_a_500_shows_the_request_id_and_logs_the_traceback_under_it(client, settings, json_log):
    settings.ROOT_URLCONF = "tests.console.boom_urls"
    client.raise_request_exception = False
    response = client.get("/boom/", headers={"X-Request-ID": "support-case-7"})
    assert response.status_code == 500
    assert response["X-Request-ID"] == "support-case-7"
    page = response.content.decode()
    assert "support-case-7" in page
    assert "the disk caught fire" not in page  # no internals to the user

    records = [json.loads(line) for line in json_log.getvalue().splitlines() if line]
    errors = [r for r in records if r["level"] == "ERROR"]
    assert errors, records
    assert errors[0]["request_id"] == "support-case-7"
    assert errors[0]["logger"] == "django.request"
    assert "RuntimeError: the disk caught fire" in errors[0]["exc_info"]


def test_an_api_500_is_json_with_the_request_id(client, settings):
    settings.ROOT_URLCONF = "tests.console.boom_urls"
    client.raise_request_exception = False
    response = client.get("/api/v1/boom/", headers={"X-Request-ID": "api-case-9"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error", "request_id": "api-case-9"}


def test_log_lines_name_the_organization_once_a_page_has_resolved_it(client, json_log):
    from tests.factories import make_member, make_org, make_user

    org = make_org(name="Logged Co")
    user = make_user()
    make_member(org=org, user=user, role="owner")
    client.force_login(user)
    logging.getLogger("console.test").info("before any request")

    def probe(*args, **kwargs):
        logging.getLogger("console.test").info("inside a page")

    from django.test.signals import template_rendered

    template_rendered.connect(probe)
    try:
        assert client.get(f"/o/{org.slug}/", headers={"X-Request-ID": "r-1"}).status_code == 200
    finally:
        template_rendered.disconnect(probe)
    records = [json.loads(line) for line in json_log.getvalue().splitlines() if line]
    outside = next(r for r in records if r["message"] == "before any request")
    assert outside["request_id"] is None and outside["organization"] is None
    inside = next(r for r in records if r["message"] == "inside a page")
    assert inside["request_id"] == "r-1"
    assert inside["organization"] == org.slug


@pytest.mark.parametrize(
    ("given", "kept"),
    [("abc-123_x.y:z", True), ("", False), ("a b", False), ("x" * 129, False), ("<i>", False)],
)
def test_a_callers_request_id_is_kept_only_when_it_is_a_plain_token(client, given, kept):
    response = client.get("/accounts/login/", headers={"X-Request-ID": given} if given else {})
    rid = response["X-Request-ID"]
    if kept:
        assert rid == given
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", rid)


def test_probes_need_no_login_and_say_nothing_about_the_stack(client, settings):
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    # The embedded default has no Redis: that is not a failure.
    assert ready.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "redis": "ok" if settings.REDIS_URL else "not configured",
        "static": "ok",
    }
    assert client.post("/readyz").status_code == 405


def test_readyz_is_503_naming_the_database_when_it_cannot_be_reached(client, monkeypatch):
    from django.db import connections

    def refuse(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(connections["default"], "cursor", refuse)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"]["database"] == "unreachable"
