"""The demo's member with an authenticator app: printed after the demo's other logins,
and the printed secret's codes sign that member in."""

from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse

from tests.accounts.test_two_factor import totp_code

pytestmark = pytest.mark.django_db


def test_the_demo_prints_a_two_factor_member_whose_secret_signs_in(client, monkeypatch):
    # The usage and payments the demo seeds are not what this test is about (and slow).
    monkeypatch.setattr("console.demo.billing_demo_events", lambda org: [])
    monkeypatch.setattr("console.demo.billing_demo_auto_recharge", lambda org: None)
    monkeypatch.setattr(
        "console.demo.usage_demo_seed", lambda **kw: SimpleNamespace(api_key="sk-av-stub")
    )
    cache.clear()
    runs = []
    for _ in range(2):  # idempotent: the same secret on a second run
        out = StringIO()
        call_command("demo", "--no-migrate", stdout=out)
        runs.append(out.getvalue().splitlines())
    lines = runs[-1]
    labels = [line.split(": ", 1)[0] for line in lines]
    assert labels[:6] == [
        "URL", "Email", "Password", "API key", "Operator email", "Operator password",
    ]  # fmt: skip
    assert labels[-3:] == ["Two-factor email", "Two-factor password", "Two-factor TOTP secret"]
    assert runs[0][-3:] == runs[1][-3:]
    email, password, secret = (line.split(": ", 1)[1] for line in lines[-3:])
    assert len(secret) == 32 and set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")

    response = client.post(reverse("login"), {"username": email, "password": password})
    assert response["Location"] == reverse("mfa_authenticate")
    client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert "_auth_user_id" in client.session
