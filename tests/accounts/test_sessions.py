"""A person's console sessions: listed in Settings → Security with device, address and
last request; ended one at a time or all but this one; a new password, a removed second
factor or an operator's action ends them."""

import pytest
from allauth.mfa.totp.internal.auth import TOTP
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.models import AuditAction, AuditEvent
from tests.factories import PASSWORD, make_member

pytestmark = pytest.mark.django_db

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def signed_in_client(email, agent="Laptop browser", address="203.0.113.5") -> Client:
    browser = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=address)
    response = browser.post(reverse("login"), {"username": email, "password": PASSWORD})
    assert response.status_code == 302
    return browser


def security_url(member) -> str:
    return reverse("accounts:security", args=[member.organization.slug])


def still_signed_in(browser, member) -> bool:
    return browser.get(f"/o/{member.organization.slug}/").status_code == 200


def test_the_security_page_lists_each_session_with_its_device_and_address():
    member = make_member()
    laptop = signed_in_client(member.user.email, "Laptop browser", "203.0.113.5")
    signed_in_client(member.user.email, "Phone browser", "198.51.100.9")
    html = laptop.get(security_url(member)).content.decode()
    assert "Laptop browser" in html and "203.0.113.5" in html
    assert "Phone browser" in html and "198.51.100.9" in html
    assert html.count("End session") == 1  # the phone's; this one is "This session"
    assert "This session" in html


def test_ending_another_session_signs_that_browser_out_only():
    member = make_member()
    laptop = signed_in_client(member.user.email, "Laptop browser")
    phone = signed_in_client(member.user.email, "Phone browser")
    sessions = laptop.get(security_url(member)).context["sessions"]
    phone_session = next(s for s in sessions if s.user_agent == "Phone browser")
    response = laptop.post(
        reverse("accounts:session_end", args=[member.organization.slug, phone_session.pk])
    )
    assert response.status_code == 302
    assert not still_signed_in(phone, member)
    assert still_signed_in(laptop, member)


def test_someone_elses_session_cannot_be_ended():
    member = make_member()
    stranger = make_member()
    stranger_browser = signed_in_client(stranger.user.email)
    theirs = stranger_browser.get(security_url(stranger)).context["sessions"][0]
    mine = signed_in_client(member.user.email)
    response = mine.post(
        reverse("accounts:session_end", args=[member.organization.slug, theirs.pk])
    )
    assert response.status_code == 404
    assert still_signed_in(stranger_browser, stranger)


def test_end_all_other_sessions_keeps_this_one():
    member = make_member()
    laptop = signed_in_client(member.user.email)
    others = [signed_in_client(member.user.email, f"Browser {n}") for n in range(2)]
    laptop.post(reverse("accounts:sessions_end_others", args=[member.organization.slug]))
    assert still_signed_in(laptop, member)
    assert not any(still_signed_in(browser, member) for browser in others)
    assert len(laptop.get(security_url(member)).context["sessions"]) == 1


def test_a_new_password_ends_the_other_sessions():
    member = make_member()
    laptop = signed_in_client(member.user.email)
    phone = signed_in_client(member.user.email, "Phone browser")
    response = laptop.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-long-password-7",
            "new_password2": "a-new-long-password-7",
        },
    )
    assert response.status_code == 302
    assert still_signed_in(laptop, member)
    assert not still_signed_in(phone, member)
    assert len(laptop.get(security_url(member)).context["sessions"]) == 1


def test_removing_a_second_factor_ends_the_other_sessions_and_is_audited(
    django_capture_on_commit_callbacks,
):
    member = make_member()
    TOTP.activate(member.user, SECRET)
    laptop, phone = Client(), Client()
    for browser in (laptop, phone):
        browser.force_login(member.user)
        assert still_signed_in(browser, member)
    confirm = laptop.get(reverse("mfa_deactivate_totp"))
    laptop.post(confirm.url, {"password": PASSWORD})
    with django_capture_on_commit_callbacks(execute=True):
        response = laptop.post(reverse("mfa_deactivate_totp"))
    assert response.status_code == 302
    assert still_signed_in(laptop, member)
    assert not still_signed_in(phone, member)
    assert AuditEvent.objects.filter(
        organization=member.organization, action=AuditAction.TWO_FACTOR_REMOVED
    ).exists()


def test_an_operator_ends_every_session_of_a_person_from_admin(admin_client):
    member = make_member()
    browsers = [signed_in_client(member.user.email, f"Browser {n}") for n in range(2)]
    response = admin_client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "end_sessions", "_selected_action": [member.user.pk]},
    )
    assert response.status_code == 302
    assert not any(still_signed_in(browser, member) for browser in browsers)


def test_last_seen_is_written_at_most_once_a_minute_per_session():
    import time_machine
    from allauth.usersessions.models import UserSession

    member = make_member()
    with time_machine.travel("2026-12-01 09:00:00Z", tick=False) as clock:
        browser = signed_in_client(member.user.email)
        browser.get(f"/o/{member.organization.slug}/")
        first = UserSession.objects.get(user=member.user).last_seen_at
        clock.shift(30)
        browser.get(f"/o/{member.organization.slug}/")
        assert UserSession.objects.get(user=member.user).last_seen_at == first
        clock.shift(31)
        browser.get(f"/o/{member.organization.slug}/")
        seen = UserSession.objects.get(user=member.user).last_seen_at
    assert (seen - first).total_seconds() == 61
