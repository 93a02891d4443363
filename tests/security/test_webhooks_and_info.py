"""Alert webhooks only ever reach global unicast addresses (IPv6 transition forms judged
by the IPv4 address they carry) and never tell what a name resolved to; signed but
malformed Stripe bodies are a 400; the alerts page showing the webhook secret is not
stored by caches."""

import json
import socket
import time

import pytest

from accounts.models import Role
from alerts.models import AlertRule
from alerts.webhooks import (
    WebhookRefused,
    address_is_public,
    webhook_target,
    webhook_url_check,
)
from billing.providers import stripe_signature_header
from tests.factories import make_member

pytestmark = pytest.mark.django_db

NOT_PUBLIC = [
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "::127.0.0.1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b:1::5db8:d822",  # local-use NAT64, even of a public address
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254 (cloud metadata)
    "fec0::1",  # site-local
    "192.0.0.8",  # IETF protocol assignments
    "192.0.0.9",
    "192.0.0.170",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 - an address refused, not one bound to
    "::",
    "ff02::1",
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_global_addresses_are_refused_in_every_form(address, settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    assert not address_is_public(address)
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(WebhookRefused):
        webhook_url_check(f"https://{host}/hook")


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:4700::1111", "64:ff9b::5db8:d822", "2002:5db8:d822::1"]
)
def test_global_addresses_and_their_transition_forms_are_allowed(address):
    assert address_is_public(address)


def test_saving_a_host_name_neither_resolves_it_nor_says_what_it_resolves_to(settings, monkeypatch):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    looked_up = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        looked_up.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    webhook_url_check("https://intranet.corp.example/hook")
    assert looked_up == []  # no DNS while the form waits
    with pytest.raises(WebhookRefused) as refused:
        webhook_target("https://intranet.corp.example/hook")  # at delivery
    assert "10.1.2.3" not in str(refused.value)


def test_an_unresolvable_and_a_private_name_get_the_same_refusal(settings, monkeypatch):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host == "nxdomain.example":
            raise socket.gaierror("no such name")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    messages = set()
    for host in ("nxdomain.example", "internal.example"):
        with pytest.raises(WebhookRefused) as refused:
            webhook_target(f"https://{host}/hook")
        messages.add(str(refused.value))
    assert len(messages) == 1


def test_the_rule_form_refuses_a_private_literal_with_a_generic_message(client, settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    member = make_member(role=Role.OWNER)
    client.force_login(member.user)
    response = client.post(
        f"/o/{member.organization.slug}/settings/alerts/new/",
        {
            "kind": "balance",
            "threshold": "10",
            "enabled": "on",
            "webhook_url": "http://[::ffff:127.0.0.1]:9/hook",
        },
    )
    assert response.status_code == 400
    assert "public internet addresses only" in response.text
    assert not AlertRule.objects.filter(webhook_url__contains="127").exists()


def test_the_alerts_page_with_the_webhook_secret_is_not_stored(client):
    member = make_member(role=Role.OWNER)
    client.force_login(member.user)
    response = client.get(f"/o/{member.organization.slug}/settings/alerts/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize(
    "event",
    [
        [1, 2],
        "a string",
        {"type": "checkout.session.completed", "data": "x"},
        {"type": "checkout.session.completed", "data": {"object": [1]}},
        {"type": 5, "data": {"object": {}}},
        {
            "type": "checkout.session.completed",
            "data": {"object": {"payment_status": "paid", "id": "cs_1", "amount_total": "lots"}},
        },
        {
            "type": "checkout.session.completed",
            "data": {"object": {"payment_status": "paid", "id": {"x": 1}, "amount_total": 5}},
        },
    ],
)
def test_a_signed_but_malformed_stripe_body_is_a_400_not_a_500(client, settings, event):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"
    body = json.dumps(event).encode()
    header = stripe_signature_header(payload=body, secret="whsec_test", timestamp=int(time.time()))
    response = client.post(
        "/webhooks/stripe/", data=body, content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )  # fmt: skip
    assert response.status_code == 400
