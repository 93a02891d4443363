"""Login lockout: counted per account name and, with a higher threshold, per client
address; a success clears only that name's failures; the address is the one the
trusted proxies saw; password reset is rate limited per address and per email."""

import pytest
from django.core import mail
from django.urls import reverse

from core.client_ip import client_ip
from tests.factories import PASSWORD, make_member

pytestmark = pytest.mark.django_db


def login(client, email, password=PASSWORD, **extra):
    return client.post(reverse("login"), {"username": email, "password": password}, **extra)


def test_logging_into_your_own_account_does_not_reset_the_count_against_someone_elses(
    client, settings
):
    victim = make_member()
    attacker = make_member()
    guesses = 0
    for _ in range(3):
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            login(client, victim.user.email, "wrong-guess")
            guesses += 1
        assert login(client, attacker.user.email).status_code == 302
        client.post(reverse("logout"))
    assert guesses >= settings.AXES_FAILURE_LIMIT
    response = login(client, victim.user.email)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_success_clears_that_accounts_own_earlier_failures(client, settings):
    member = make_member()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, member.user.email, "typo")
    assert login(client, member.user.email).status_code == 302
    client.post(reverse("logout"))
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, member.user.email, "typo")
    assert login(client, member.user.email).status_code == 302


def test_failures_for_names_that_are_not_accounts_do_not_lock_out_a_real_owner(client, settings):
    owner = make_member()
    for n in range(settings.AXES_FAILURE_LIMIT):
        login(client, f"nobody{n}@x.example", "whatever")
    assert login(client, owner.user.email).status_code == 302


def test_many_failures_from_one_address_lock_that_address(client, settings):
    settings.AXES_IP_FAILURE_LIMIT = 12
    owner = make_member()
    for n in range(12):
        login(client, f"nobody{n}@x.example", "whatever")
    assert login(client, owner.user.email).status_code == 429
    # Another address is not locked.
    assert login(client, owner.user.email, REMOTE_ADDR="198.51.100.7").status_code == 302


def test_behind_a_proxy_the_lockout_counts_the_client_address_not_the_proxys(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.AXES_IP_FAILURE_LIMIT = 6
    owner = make_member()
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for n in range(6):
        login(client, f"nobody{n}@x.example", "x", HTTP_X_FORWARDED_FOR="203.0.113.9", **proxy)
    # The attacker's address is locked; another client behind the same proxy is not.
    blocked = login(client, owner.user.email, HTTP_X_FORWARDED_FOR="203.0.113.9", **proxy)
    assert blocked.status_code == 429
    other = login(client, owner.user.email, HTTP_X_FORWARDED_FOR="198.51.100.20", **proxy)
    assert other.status_code == 302


@pytest.mark.parametrize(
    ("proxies", "forwarded", "remote", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.2", "10.0.0.2"),  # no proxy: the header is ignored
        (1, "1.2.3.4, 203.0.113.9", "10.0.0.2", "203.0.113.9"),  # client-written entry skipped
        (2, "1.2.3.4, 203.0.113.9, 10.0.0.3", "10.0.0.2", "203.0.113.9"),
        (2, "203.0.113.9", "10.0.0.2", "10.0.0.2"),  # fewer hops than proxies
        (1, "not-an-ip", "10.0.0.2", "10.0.0.2"),
    ],
)
def test_client_ip_takes_the_entry_the_trusted_proxies_added(
    rf, settings, proxies, forwarded, remote, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = rf.get("/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR=remote)
    assert client_ip(request) == expected


def test_password_reset_mails_one_address_at_most_the_limit_an_hour(client, settings):
    member = make_member()
    for _ in range(8):
        response = client.post(reverse("password_reset"), {"email": member.user.email})
        assert response.status_code == 302  # the same answer every time
    assert len(mail.outbox) == settings.PASSWORD_RESET_LIMIT_PER_EMAIL


def test_password_reset_is_limited_per_client_address(client, settings):
    settings.PASSWORD_RESET_LIMIT_PER_IP = 4
    answers = [
        client.post(reverse("password_reset"), {"email": f"n{n}@x.example"}).status_code
        for n in range(6)
    ]
    assert answers == [302] * 4 + [429] * 2
