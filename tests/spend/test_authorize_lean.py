"""Authorize's lean path (answered before the middleware chain and django-ninja) gives the
ninja endpoint's answers: the same status, JSON, rate-limit and security headers, and it
leaves to the endpoint the bodies only the endpoint's validation words."""

from decimal import Decimal

import pytest
from django.test import Client
from ninja.operation import Operation

from console import api_path
from spend.models import Budget, KeyPause, Reservation
from tests.factories import grant_credits, make_api_key, make_org
from tests.spend.conftest import post

pytestmark = pytest.mark.django_db

AUTHORIZE = "/api/v1/usage/authorize"
OK = {"model": "llama-3.1-8b", "input_tokens": 800, "max_output_tokens": 500}
MESSAGES = [{"role": "user", "content": "Explain quantum computing."}]
# Headers whose values differ between two calls (ids, clocks), compared by name only.
VOLATILE = {
    "X-Request-ID", "Retry-After", "Content-Length",
    "X-RateLimit-Reset-RPM", "X-RateLimit-Reset-TPM",
}  # fmt: skip


def _setup(case: str) -> str:
    """A fresh organization prepared for the case; returns the secret to send."""
    org = make_org(allow_overdraft=case != "balance")
    grant_credits(org=org, amount="100")
    key, secret = make_api_key(org=org)
    if case == "budget":
        Budget.objects.create(
            organization=org, scope="organization", period="day",
            soft_limit=Decimal(1), hard_limit=Decimal("0.0001"),
        )  # fmt: skip
    elif case == "paused":
        KeyPause.objects.create(organization=org, api_key=key)
    elif case == "rate":
        key.rate_limit_rpm = 1
        key.save(update_fields=["rate_limit_rpm"])
    return secret


def _comparable(response) -> tuple:
    data = response.json()
    if data.get("reservation"):
        data["reservation"] = data["reservation"][:4]  # rsv_
    if data.get("expires_at"):
        data["expires_at"] = "set"
    for name in ("retry_after", "budget"):  # a second apart; each case's own budget
        if data.get(name):
            data[name] = "set"
    headers = {
        name: ("…" if name in VOLATILE else value)
        for name, value in response.headers.items()
        if name not in {"Content-Type"}
    }
    return response.status_code, data, headers, response["Content-Type"].split(";")[0]


CASES = [
    ("allowed", OK, "key"),
    ("allowed", {"model": "llama-3.1-8b", "messages": MESSAGES}, "key"),
    ("allowed", {**OK, "member": "ana@example.com", "endpoint": "/chat", "other": 1}, "key"),
    ("budget", OK, "key"),
    ("balance", {**OK, "input_tokens": 10**9}, "key"),
    ("paused", OK, "key"),
    ("rate", OK, "key"),
    ("allowed", {**OK, "model": "no-such-model"}, "key"),
    ("allowed", {**OK, "input_tokens": "800"}, "key"),
    ("allowed", {**OK, "input_tokens": True}, "key"),
    ("allowed", {**OK, "max_output_tokens": 10**12}, "key"),
    ("allowed", {**OK, "messages": MESSAGES}, "key"),
    ("allowed", {"model": "llama-3.1-8b"}, "key"),
    ("allowed", {**OK, "member": "nul\x00"}, "key"),
    ("allowed", {"model": "llama-3.1-8b", "messages": [{"role": "", "content": "x"}]}, "key"),
    ("allowed", OK, "unknown"),
    ("allowed", OK, "session"),
]


@pytest.mark.parametrize(("case", "body", "credential"), CASES)
def test_the_lean_path_answers_as_the_endpoint(client, spend, monkeypatch, case, body, credential):
    answers = []
    for lean in (True, False):
        secret = {"key": _setup(case), "unknown": "sk-av-unknown", "session": spend.owner_token}[
            credential
        ]
        with monkeypatch.context() as patch:
            if not lean:
                patch.setattr(api_path, "LEAN_CALLS", {})
            if case == "rate":
                post(client, AUTHORIZE, OK, secret)  # the minute's one request
            answers.append(_comparable(post(client, AUTHORIZE, body, secret)))
    assert answers[0] == answers[1]
    assert answers[0][2]["X-Content-Type-Options"] == "nosniff"  # the security headers


def test_an_authorization_skips_django_ninja(client, spend, monkeypatch):
    def not_here(*args, **kwargs):
        raise AssertionError("django-ninja ran")

    monkeypatch.setattr(Operation, "run", not_here)
    response = post(client, AUTHORIZE, OK, spend.key_secret)
    assert response.status_code == 200, response.content
    reservation = Reservation.objects.get(public_id=response.json()["reservation"])
    # 1,300 tokens at the default 0.10 credits per million.
    assert reservation.credits == Decimal("0.00013")


def test_a_body_only_the_endpoint_words_counts_nothing_twice(client, spend):
    bad = post(client, AUTHORIZE, {**OK, "input_tokens": "800"}, spend.key_secret)
    assert bad.status_code == 400 and bad.json()["field"] == "input_tokens"
    good = post(client, AUTHORIZE, OK, spend.key_secret)
    # The refused call counted no request against the minute (3,000 a minute: startup).
    assert good["X-RateLimit-Remaining-RPM"] == "2999"
    assert Reservation.objects.filter(organization=spend.org).count() == 1


def test_a_failure_on_the_lean_path_is_the_usual_500_with_its_request_id(spend, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("spend.api.authorize.authorize_decide", broken)
    client = Client(raise_request_exception=False)
    response = post(client, AUTHORIZE, OK, spend.key_secret)
    assert response.status_code == 500
    assert response.json()["request_id"] == response["X-Request-ID"]
    assert response["X-Content-Type-Options"] == "nosniff"
