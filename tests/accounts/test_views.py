import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Role
from tests.factories import PASSWORD, make_member, make_org

pytestmark = pytest.mark.django_db


def login(client, email, password=PASSWORD):
    return client.post(reverse("login"), {"username": email, "password": password})


def test_right_password_logs_in_and_lands_on_the_organization_main_page(client):
    member = make_member()
    response = login(client, member.user.email)
    assert response.status_code == 302
    page = client.get(response.url, follow=True)
    assert page.status_code == 200
    assert page.redirect_chain[-1][0] == f"/o/{member.organization.slug}/"
    html = page.content.decode()
    assert member.organization.name in html and member.user.email in html


def test_login_is_case_insensitive_on_the_email(client):
    member = make_member()
    assert login(client, member.user.email.upper()).status_code == 302


def test_wrong_password_is_refused_with_an_error(client):
    member = make_member()
    response = login(client, member.user.email, "wrong-password")
    assert response.status_code == 200
    assert "enter a correct email" in response.content.decode().lower()
    assert client.get(f"/o/{member.organization.slug}/").status_code == 302  # still anonymous


def test_repeated_failed_logins_lock_the_account_even_with_the_right_password(client, settings):
    member = make_member()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, member.user.email, "wrong-password")
    response = login(client, member.user.email)
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_lockout_ends_after_the_cool_off(client, settings, time_machine):
    member = make_member()
    time_machine.move_to("2026-11-20 10:00:00Z", tick=False)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, member.user.email, "wrong-password")
    assert login(client, member.user.email).status_code == 429
    time_machine.move_to("2026-11-20 10:16:00Z", tick=False)
    assert login(client, member.user.email).status_code == 302


def test_logout_ends_the_session(client):
    member = make_member()
    client.force_login(member.user)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(f"/o/{member.organization.slug}/").status_code == 302


def test_anonymous_visitor_is_sent_to_login(client):
    org = make_org()
    response = client.get(f"/o/{org.slug}/usage/")
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/?next=")


@pytest.mark.parametrize("path", ["", "usage/", "finance/", "settings/"])
def test_member_of_another_organization_gets_404(client, path):
    a = make_member()
    b = make_member()
    client.force_login(b.user)
    assert client.get(f"/o/{a.organization.slug}/{path}").status_code == 404
    assert client.get(f"/o/{b.organization.slug}/{path}").status_code == 200


def test_an_unknown_organization_is_the_same_404(client):
    b = make_member()
    client.force_login(b.user)
    assert client.get("/o/does-not-exist/").status_code == 404


def test_every_page_shows_the_session_chip_and_navigation(client):
    member = make_member()
    client.force_login(member.user)
    for path in ["", "usage/", "finance/", "settings/"]:
        html = client.get(f"/o/{member.organization.slug}/{path}").content.decode()
        assert 'data-testid="chip-org">' + member.organization.name in html
        assert member.user.email in html
        for text in (">Main<", ">Usage<", ">Finance<", ">Settings<"):
            assert text in html


def test_organization_switcher_lists_only_my_organizations_and_switches(client):
    me = make_member(role=Role.OWNER)
    second = make_member(user=me.user, role=Role.VIEWER)
    stranger = make_member()
    client.force_login(me.user)

    html = client.get(f"/o/{me.organization.slug}/").content.decode()
    assert f'href="/o/{second.organization.slug}/"' in html
    assert stranger.organization.name not in html

    # Opening the other organization makes it current, and "/" remembers it.
    assert client.get(f"/o/{second.organization.slug}/").status_code == 200
    assert client.get("/").url == f"/o/{second.organization.slug}/"
    assert client.get(f"/o/{stranger.organization.slug}/").status_code == 404
    assert client.get("/").url == f"/o/{second.organization.slug}/"


def test_user_with_no_organization_sees_an_explanation(client):
    from tests.factories import make_user

    user = make_user()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    assert "not a member of any organization" in response.content.decode()


def test_password_change_requires_the_old_password(client):
    member = make_member()
    client.force_login(member.user)
    bad = client.post(
        reverse("password_change"),
        {
            "old_password": "nope",
            "new_password1": "N3w-long-pass!",
            "new_password2": "N3w-long-pass!",
        },
    )
    assert bad.status_code == 200
    good = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "N3w-long-pass!",
            "new_password2": "N3w-long-pass!",
        },
    )
    assert good.status_code == 302
    member.user.refresh_from_db()
    assert member.user.check_password("N3w-long-pass!")


def test_password_reset_sends_a_link_that_sets_a_new_password(client):
    member = make_member()
    response = client.post(reverse("password_reset"), {"email": member.user.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line)
    path = link[link.index("/accounts/reset/") :].strip()
    form = client.get(path, follow=True)
    assert form.status_code == 200
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "Fresh-pass-2026", "new_password2": "Fresh-pass-2026"},
    )
    assert done.status_code == 302
    member.user.refresh_from_db()
    assert member.user.check_password("Fresh-pass-2026")


def test_settings_page_lists_the_members_of_this_organization_only(client):
    owner = make_member()
    colleague = make_member(org=owner.organization, role=Role.VIEWER)
    outsider = make_member()
    client.force_login(owner.user)
    html = client.get(f"/o/{owner.organization.slug}/settings/").content.decode()
    assert colleague.user.email in html
    assert outsider.user.email not in html


def test_changing_the_case_of_the_email_does_not_dodge_the_lockout(client, settings):
    member = make_member()
    for i in range(settings.AXES_FAILURE_LIMIT):
        email = member.user.email.upper() if i % 2 else member.user.email
        login(client, email, "wrong-password")
    assert login(client, member.user.email).status_code == 429


# ---- colour scheme: the session chip's Appearance buttons, remembered per user


def test_the_colour_scheme_is_remembered_per_user_and_drawn_on_every_page(client):
    member = make_member()
    client.force_login(member.user)
    main = f"/o/{member.organization.slug}/"
    page = client.get(main).content.decode()
    assert '<html lang="en">' in page  # no choice yet: the device's preference rules
    assert 'content="light dark"' in page

    response = client.post("/accounts/color-scheme/", {"color_scheme": "dark", "next": main})
    assert response.status_code == 302 and response["Location"] == main
    member.user.refresh_from_db()
    assert member.user.color_scheme == "dark"
    page = client.get(f"/o/{member.organization.slug}/usage/").content.decode()
    assert '<html lang="en" data-theme="dark">' in page
    assert 'value="dark" aria-pressed="true">Dark</button>' in page

    client.post("/accounts/color-scheme/", {"color_scheme": "", "next": main})
    member.user.refresh_from_db()
    assert member.user.color_scheme == ""


def test_the_colour_scheme_refuses_unknown_values_and_foreign_redirects(client):
    member = make_member()
    client.force_login(member.user)
    assert client.post("/accounts/color-scheme/", {"color_scheme": "pink"}).status_code == 400
    response = client.post(
        "/accounts/color-scheme/", {"color_scheme": "light", "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/accounts/color-scheme/").status_code == 405
