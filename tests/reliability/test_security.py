"""Security checks: CSRF on htmx posts, secrets only as hashes, CSV formulas escaped in
every CSV the console serves, security headers on pages and API answers, HSTS in
production mode.

Covered elsewhere, not repeated here:
- `manage.py check --deploy` clean in production mode:
  tests/console/test_settings.py::test_production_mode_passes_check_deploy_without_warnings;
- login lockout (django-axes): tests/accounts/test_views.py::
  test_repeated_failed_logins_lock_the_account_even_with_the_right_password, the cool-off
  and the e-mail case variants beside it;
- tenant isolation over every URL: tests/security/test_isolation.py.
"""

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import models
from django.db.models.functions import Cast
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from accounts.models import APIKey, Role
from accounts.services import session_token_issue
from billing.services import ledger_adjust, ledger_post, statement_issue
from ingest.services.ingest import usage_records_ingest
from tests.factories import (
    grant_credits,
    make_api_key,
    make_controller,
    make_member,
    make_user,
)

pytestmark = pytest.mark.django_db

TRIED: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    parts = ", ".join(f"{name} {count}" for name, count in sorted(TRIED.items()))
    print(f"\n[security] {sum(TRIED.values())} checks: {parts}")


@pytest.fixture
def owner():
    member = make_member(role=Role.OWNER)
    grant_credits(org=member.organization, amount="100")
    return member


def all_routes(patterns=None, prefix=""):
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from all_routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


# --- CSRF on htmx posts ------------------------------------------------------------------

# Real forms of the console, posted the way htmx posts them (HX-Request, the token in the
# X-CSRFToken header that <body hx-headers> carries).
HTMX_FORMS = [
    ("settings/keys/create", {"name": "ci", "kind": "workspace"}),
    ("settings/tokens/create", {"name": "laptop"}),
    ("usage/controllers/create", {"name": "dgx-09", "cores": "8", "memory_gb": "64"}),
    ("settings/alerts/webhook-secret/rotate/", {}),
    ("finance/add/details/", {"amount_minor": "2500", "idempotency_key": "csrf-1",
                              "number": "4242424242424242", "expiry": "12/99", "cvc": "123"}),
    ("finance/auto-recharge/", {"action": "disable"}),
]  # fmt: skip


def _state(org) -> tuple:
    from billing.models import Payment
    from usage.models import Controller

    return (
        APIKey.objects.filter(organization=org).count(),
        org.session_tokens.count() if hasattr(org, "session_tokens") else 0,
        Controller.objects.filter(organization=org).count(),
        Payment.objects.filter(organization=org).count(),
    )


@pytest.mark.parametrize(("path", "data"), HTMX_FORMS, ids=[p for p, _ in HTMX_FORMS])
def test_an_htmx_post_without_the_csrf_token_is_403_and_with_it_goes_through(owner, path, data):
    org = owner.organization
    url = f"/o/{org.slug}/{path}"
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner.user)
    page = browser.get(f"/o/{org.slug}/")
    token = page.cookies["csrftoken"].value
    assert 'hx-headers=\'{"X-CSRFToken": "' in page.content.decode()

    before = _state(org)
    refused = browser.post(url, data, headers={"HX-Request": "true"})
    TRIED["htmx posts"] += 1
    assert refused.status_code == 403, (path, refused.status_code)
    assert _state(org) == before, "a refused post changed something"
    forged = browser.post(url, data, headers={"HX-Request": "true", "X-CSRFToken": "x" * 32})
    TRIED["htmx posts"] += 1
    assert forged.status_code == 403, path

    accepted = browser.post(url, data, headers={"HX-Request": "true", "X-CSRFToken": token})
    TRIED["htmx posts"] += 1
    assert accepted.status_code in {200, 302}, (path, accepted.status_code)
    if path != "finance/auto-recharge/" and path != "settings/alerts/webhook-secret/rotate/":
        assert _state(org) != before, f"{path}: the post with its token did nothing"


# --- Secrets only as hashes ---------------------------------------------------------------


TEXT_FIELDS = (models.CharField, models.TextField)


def _holding(secret_part: str) -> list[str]:
    """Every model column (text, or JSON as text) holding the string, as table.column."""
    found = []
    for model in apps.get_models(include_auto_created=True):
        for f in model._meta.concrete_fields:
            if isinstance(f, TEXT_FIELDS):
                hit = model._base_manager.filter(**{f"{f.attname}__contains": secret_part})
            elif isinstance(f, models.JSONField):
                hit = model._base_manager.annotate(
                    _text=Cast(f.attname, models.TextField())
                ).filter(_text__contains=secret_part)
            else:
                continue
            TRIED["columns searched"] += 1
            if hit.exists():
                found.append(f"{model._meta.db_table}.{f.column}")
    for session in Session.objects.all():  # session data is encoded: decode it
        if secret_part in json.dumps(session.get_decoded(), default=str):
            found.append(f"django_session {session.pk}")
    return found


def test_api_keys_session_tokens_and_controller_tokens_are_stored_only_as_hashes(client, owner):
    import hashlib

    org = owner.organization
    secrets = {}
    key, secrets["api key (service)"] = make_api_key(org=org, user=owner.user, kind="personal")
    secrets["session token (service)"] = session_token_issue(user=owner.user, org=org).secret
    _, secrets["controller token"] = make_controller(org=org)
    # And through the pages, which show each secret once.
    client.force_login(owner.user)
    for path, data, pattern in [
        ("settings/keys/create", {"name": "web", "kind": "workspace"}, r"sk-av-[\w-]+"),
        ("settings/tokens/create", {"name": "web"}, r"st-av-[\w-]+"),
    ]:
        html = client.post(f"/o/{org.slug}/{path}", data, follow=True).content.decode()
        shown = re.search(pattern, html)
        assert shown, f"{path}: the secret is shown once"
        secrets[f"{path} (page)"] = shown.group(0)
    api_answer = client.post(
        "/api/v1/auth/session-tokens",
        {"name": "api", "organization": org.slug},
        content_type="application/json",
    )
    assert api_answer.status_code == 201, api_answer.content
    secrets["session token (API)"] = api_answer.json()["token"]

    for what, secret in secrets.items():
        TRIED["secrets"] += 1
        assert len(secret) >= 32, what
        # The whole secret, and its part past any visible prefix and before the last four.
        assert _holding(secret) == [], what
        assert _holding(secret[12:-4]) == [], what
    assert key.secret_hash == hashlib.sha256(secrets["api key (service)"].encode()).hexdigest()


def test_a_single_sign_on_client_secret_is_stored_only_encrypted(owner):
    org = owner.organization
    secret = "sso-client-secret-7Qm2xP9vLk4Rt8Zw3Yn6"
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner.user)
    token = browser.get(f"/o/{org.slug}/settings/security/").cookies["csrftoken"].value
    form = {
        "issuer": "https://login.example",
        "client_id": "console",
        "client_secret": secret,
        "domains": "example.org",
        "default_role": "member",
        "enabled": "on",
    }
    url = f"/o/{org.slug}/settings/security/sso"
    TRIED["sso posts"] += 1
    assert browser.post(url, form).status_code == 403
    assert not hasattr(org, "sso_provider")
    TRIED["sso posts"] += 1
    assert browser.post(url, {**form, "csrfmiddlewaretoken": token}).status_code == 302
    org.refresh_from_db()
    assert org.sso_provider.client_id == "console"
    TRIED["secrets"] += 1
    assert _holding(secret) == []
    assert _holding(secret[8:-4]) == []


# --- CSV formula escaping -----------------------------------------------------------------

HOSTILE = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1:A9)",
           "\t=1+1", "\r=1+1", "=cmd|' /C calc'!A0"]  # fmt: skip
NUMBER = re.compile(r"^-?\d+(\.\d+)?(E[+-]?\d+)?$")


def csv_routes() -> list[str]:
    """Every URL that serves CSV, from the URL configuration (a new export is covered)."""
    routes = []
    for route, pattern in all_routes():
        name = getattr(pattern.callback, "__name__", "")
        if route.endswith(".csv") or "csv" in name:
            routes.append(route)
    return routes


def test_every_csv_escapes_cells_a_spreadsheet_would_run_as_formulas(client, owner):
    org = owner.organization
    operator = make_user(email="+operator@example.com", is_staff=True)
    for n, text in enumerate(HOSTILE):
        # ledger_post keeps the text as given (ledger_adjust would strip the tab and CR).
        ledger_post(org=org, kind="adjustment", amount=Decimal("1"), reason=text,
                    actor=operator, reference=text, idempotency_key=f"{text}-{n}")  # fmt: skip
    ledger_adjust(org=org, amount=Decimal("1"), reason="=1+2", actor=operator,
                  idempotency_key="adjust")  # fmt: skip
    ledger_post(org=org, kind="grant", amount=Decimal("2"), reason="grant", reference="=ref()",
                model_name="-model", idempotency_key="@key")  # fmt: skip
    key, _ = make_api_key(org=org, name="=key")
    make_controller(org=org, name="@ctl")
    usage_records_ingest(
        org=org,
        api_key=key,
        records=[
            {"id": "=job", "kind": "job", "status": "completed", "cores": 2, "controller": "@ctl",
             "submitted_at": "2026-11-18T07:59:00Z", "started_at": "2026-11-18T08:00:00Z",
             "ended_at": "2026-11-18T10:00:00Z"},
            {"id": "+q", "kind": "query", "occurred_at": "2026-11-18T10:00:00Z",
             "model": "llama-3.1-8b", "input_tokens": 25, "output_tokens": 100,
             "endpoint": "=endpoint()", "member": "@member"},
        ],
    )  # fmt: skip
    client.force_login(owner.user)

    # This month's statement, issued as if the month had closed: its lines carry the
    # hostile reasons too.
    month = timezone.localdate().replace(day=1)
    statement = statement_issue(org=org, month=month, now=timezone.now() + timedelta(days=32))
    routes = csv_routes()
    assert len(routes) >= 2, routes  # transactions and the usage timeline at least
    seen_hostile = set()
    for route in routes:
        url = "/" + route.replace("<slug:org_slug>", org.slug)
        url = url.replace("<int:statement_id>", str(statement.pk))
        assert "<" not in url, f"cannot fill {route}: add its keyword here"
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"].startswith("text/csv")
        text = b"".join(response.streaming_content).decode("utf-8-sig")
        for row in csv.reader(io.StringIO(text, newline="")):
            for cell in row:
                TRIED["CSV cells"] += 1
                if cell.startswith(("=", "+", "-", "@", "\t", "\r")):
                    assert NUMBER.match(cell), f"{url}: formula cell {cell!r}"
                if cell.startswith("'") and cell[1:] in HOSTILE + [
                    "=ref()",
                    "-model",
                    "@key",
                    "+operator@example.com",
                ]:
                    seen_hostile.add(cell[1:])  # fmt: skip
    # The planted values did reach an export (escaped), so the check above saw them.
    assert set(HOSTILE) <= seen_hostile, set(HOSTILE) - seen_hostile


# --- Security headers ----------------------------------------------------------------------

ALLOWED_SOURCES = {"'self'", "'none'", "data:", "'unsafe-inline'"}


def csp_directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@pytest.mark.parametrize(
    "path",
    ["/o/{slug}/", "/o/{slug}/finance/", "/o/{slug}/usage/", "/o/{slug}/settings/keys/",
     "/accounts/login/", "/api/v1/account", "/api/v1/usage/llm?page=0",
     "/api/v1/openapi.json", "/api/v1/docs", "/api/v1/no-such-endpoint",
     "/o/{slug}/usage/timeline.csv"],
)  # fmt: skip
def test_pages_and_api_answers_carry_the_security_headers(client, owner, path):
    org = owner.organization
    _, secret = make_api_key(org=org)
    client.force_login(owner.user)
    response = client.get(path.format(slug=org.slug), headers={"Authorization": f"Bearer {secret}"})
    TRIED["answers' headers"] += 1
    assert response.status_code < 500, path
    assert response["X-Content-Type-Options"] == "nosniff", path
    csp = csp_directives(response["Content-Security-Policy"])
    assert csp["default-src"] == ["'self'"], csp
    scripts = csp.get("script-src", csp["default-src"])
    assert "'unsafe-eval'" not in scripts and "'unsafe-inline'" not in scripts, scripts
    for directive, sources in csp.items():
        for source in sources:
            assert source in ALLOWED_SOURCES or source.startswith("'nonce-"), (directive, source)
    framing = response.get("X-Frame-Options", "").upper() == "DENY"
    assert framing and csp.get("frame-ancestors") == ["'none'"], path


def production_settings() -> dict:
    """The SECURE_* settings CONSOLE_MODE=production gives, read in a fresh process."""
    names = ["SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
             "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_SECURE",
             "CSRF_COOKIE_SECURE", "SECURE_CONTENT_TYPE_NOSNIFF", "DEBUG"]  # fmt: skip
    code = (
        "import json; from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {names!r}}}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(CONSOLE_MODE="production", SECRET_KEY="p" * 60, ALLOWED_HOSTS="console.example.com")
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"] or ()) or None
    return values


def test_production_mode_sends_hsts_and_redirects_plain_http(client, owner):
    prod = production_settings()
    assert prod["DEBUG"] is False and prod["SESSION_COOKIE_SECURE"] and prod["CSRF_COOKIE_SECURE"]
    assert prod["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    del prod["DEBUG"]
    client.force_login(owner.user)
    with override_settings(**prod, ALLOWED_HOSTS=["console.example.com"]):
        for path in (f"/o/{owner.organization.slug}/", "/api/v1/openapi.json"):
            # HTTPS as gunicorn reports it (wsgi.url_scheme, from the trusted proxy).
            over_tls = client.get(path, secure=True, HTTP_HOST="console.example.com")
            TRIED["production answers"] += 1
            hsts = over_tls["Strict-Transport-Security"]
            assert f"max-age={prod['SECURE_HSTS_SECONDS']}" in hsts
            assert "includeSubDomains" in hsts and "preload" in hsts
            plain = client.get(path, HTTP_HOST="console.example.com")
            TRIED["production answers"] += 1
            assert plain.status_code == 301
            # The proxy's header sent by anyone else claims nothing.
            claimed = client.get(path, headers={"X-Forwarded-Proto": "https"},
                                 HTTP_HOST="console.example.com")  # fmt: skip
            assert claimed.status_code == 301
            assert plain["Location"].startswith("https://console.example.com/")
