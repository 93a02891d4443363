"""Two-factor sign-in: the second factor after the password wherever a session is made,
its refusals (wrong, reused, expired code, a used recovery code), the lockout counting
wrong codes, the organization's requirement and the audit of factors."""

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from accounts.models import APIKey, AuditAction, AuditEvent, Role
from tests.factories import PASSWORD, make_member, make_org

pytestmark = pytest.mark.django_db

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def totp_code(secret: str, at: float | None = None) -> str:
    """RFC 6238 (SHA-1, 30 s, 6 digits), written here independently of the library."""
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(base64.b32decode(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Used TOTP codes and allauth's rate limits live in the cache.
    cache.clear()


def with_totp(member):
    TOTP.activate(member.user, SECRET)
    return member


def password_step(client, email, password=PASSWORD, **extra):
    return client.post(reverse("login"), {"username": email, "password": password}, **extra)


def code_step(client, code, **extra):
    return client.post(reverse("mfa_authenticate"), {"code": code}, **extra)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_a_right_password_alone_makes_no_session_when_the_person_has_two_factor(client):
    member = with_totp(make_member())
    response = password_step(client, member.user.email)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert not signed_in(client)
    assert client.get(f"/o/{member.organization.slug}/").status_code == 302


def test_the_right_code_signs_in_on_a_new_session_key(client):
    member = with_totp(make_member())
    password_step(client, member.user.email)
    before = client.session.session_key
    response = code_step(client, totp_code(SECRET))
    assert response.status_code == 302
    assert signed_in(client)
    assert client.session.session_key != before
    assert client.get(f"/o/{member.organization.slug}/").status_code == 200


def test_a_wrong_code_is_refused(client):
    member = with_totp(make_member())
    password_step(client, member.user.email)
    right = totp_code(SECRET)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    response = code_step(client, wrong)
    assert response.status_code == 200
    assert "incorrect code" in response.content.decode().lower()
    assert not signed_in(client)


def test_a_code_already_used_is_refused(client):
    member = with_totp(make_member())
    code = totp_code(SECRET)
    password_step(client, member.user.email)
    assert code_step(client, code).status_code == 302
    client.post(reverse("logout"))
    password_step(client, member.user.email)
    response = code_step(client, code)
    assert response.status_code == 200
    assert not signed_in(client)


def test_an_expired_code_is_refused(client):
    member = with_totp(make_member())
    password_step(client, member.user.email)
    # Two 30-second steps ago: outside the one step either side that drift is allowed.
    response = code_step(client, totp_code(SECRET, at=time.time() - 75))
    assert response.status_code == 200
    assert not signed_in(client)


def test_wrong_codes_count_towards_the_lockout_and_then_even_the_right_code_is_refused(
    client, settings
):
    member = with_totp(make_member())
    password_step(client, member.user.email)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        code_step(client, "000000" if totp_code(SECRET) != "000000" else "111111")
    response = code_step(client, totp_code(SECRET))
    assert response.status_code == 429
    assert not signed_in(client)
    # The password step is locked too.
    assert password_step(client, member.user.email).status_code == 429


def test_a_recovery_code_signs_in_once(client):
    member = with_totp(make_member())
    codes = RecoveryCodes.activate(member.user).get_unused_codes()
    password_step(client, member.user.email)
    assert code_step(client, codes[0]).status_code == 302
    assert signed_in(client)
    client.post(reverse("logout"))
    password_step(client, member.user.email)
    assert code_step(client, codes[0]).status_code == 200
    assert not signed_in(client)
    assert code_step(client, codes[1]).status_code == 302


def test_the_admin_login_asks_an_operator_for_the_second_factor(client):
    operator = with_totp(make_member())
    operator.user.is_staff = operator.user.is_superuser = True
    operator.user.save()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": operator.user.email, "password": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
    assert not signed_in(client)
    assert client.get("/admin/").status_code == 302
    assert code_step(client, totp_code(SECRET))["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_the_admin_login_counts_towards_the_same_lockout(client, settings):
    operator = make_member()
    operator.user.is_staff = True
    operator.user.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": operator.user.email, "password": "nope"})
    assert password_step(client, operator.user.email).status_code == 429


def test_a_password_reset_does_not_skip_the_second_factor(client):
    member = with_totp(make_member())
    client.post(reverse("password_reset"), {"email": member.user.email})
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+)", mail.outbox[0].body).group(1)
    form_url = client.get(link).url
    response = client.post(
        form_url, {"new_password1": "a-brand-new-pass-42", "new_password2": "a-brand-new-pass-42"}
    )
    assert response.status_code == 302
    assert not signed_in(client)
    password_step(client, member.user.email, "a-brand-new-pass-42")
    assert not signed_in(client)
    code_step(client, totp_code(SECRET))
    assert signed_in(client)


def test_setting_up_an_app_from_the_shown_secret_turns_two_factor_on_and_is_audited(
    client, django_capture_on_commit_callbacks
):
    member = make_member()
    password_step(client, member.user.email)
    # allauth asks for the password again before a factor changes.
    confirm = client.get(reverse("mfa_activate_totp"))
    assert confirm.status_code == 302 and confirm.url.startswith(reverse("account_reauthenticate"))
    assert client.post(confirm.url, {"password": PASSWORD}).status_code == 302
    page = client.get(reverse("mfa_activate_totp")).content.decode()
    assert 'src="data:image/svg+xml;base64,' in page  # the QR code, drawn on the server
    secret = re.search(r"\b([A-Z2-7]{32})\b", page).group(1)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302
    security = client.get(reverse("accounts:security", args=[member.organization.slug]))
    assert 'data-testid="two-factor-status">On.' in security.content.decode()
    actions = set(
        AuditEvent.objects.filter(organization=member.organization).values_list("action", flat=True)
    )
    assert AuditAction.TWO_FACTOR_ADDED in actions


def test_an_organization_requiring_two_factor_sends_members_without_one_to_set_up(client):
    owner = with_totp(make_member())
    org = owner.organization
    newcomer = make_member(org=org, role=Role.MEMBER)
    client.force_login(owner.user)
    client.post(reverse("accounts:two_factor_policy", args=[org.slug]), {"required": "on"})
    org.refresh_from_db()
    assert org.require_two_factor
    assert AuditEvent.objects.filter(
        organization=org, action=AuditAction.TWO_FACTOR_POLICY_CHANGED, actor=owner.user
    ).exists()
    assert client.get(f"/o/{org.slug}/").status_code == 200  # the owner has a factor

    client.force_login(newcomer.user)
    for page in [f"/o/{org.slug}/", f"/o/{org.slug}/usage/", f"/o/{org.slug}/settings/keys/"]:
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"] == reverse("accounts:security", args=[org.slug])
    assert client.get(reverse("accounts:security", args=[org.slug])).status_code == 200
    # A member cannot switch the requirement off.
    client.post(reverse("accounts:two_factor_policy", args=[org.slug]), {})
    org.refresh_from_db()
    assert org.require_two_factor


def test_the_requirement_leaves_programs_with_api_keys_alone(client):
    from accounts.services import apikey_create

    org = make_org(require_two_factor=True)
    issued = apikey_create(org=org, name="ci", kind="workspace", user=None, created_by=None)
    assert APIKey.objects.filter(organization=org).exists()
    response = client.get("/api/v1/account/credits", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert response.status_code == 200


def test_only_an_owner_with_a_factor_may_require_one(client):
    owner = make_member()
    client.force_login(owner.user)
    client.post(
        reverse("accounts:two_factor_policy", args=[owner.organization.slug]), {"required": "on"}
    )
    owner.organization.refresh_from_db()
    assert not owner.organization.require_two_factor


def test_an_authenticator_apps_secret_is_stored_encrypted():
    from allauth.mfa.models import Authenticator

    member = with_totp(make_member())
    stored = Authenticator.objects.get(user=member.user, type=Authenticator.Type.TOTP).data
    assert SECRET not in str(stored)
