"""Invitations (signed, single-use, 7 days, their own organization only), role changes and
removal; the last owner stays; a removed member's credentials stop working."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.signing import dumps
from django.urls import reverse
from django.utils import timezone

from accounts.models import APIKey, Invitation, Membership, Role, SessionToken, User
from accounts.services import apikey_create, session_token_issue
from accounts.team import (
    INVITATION_SALT,
    InvitationRefused,
    TeamError,
    invitation_accept,
    invitation_create,
    invitation_resend,
    invitation_revoke,
    invitation_token,
    member_remove,
    member_role_change,
)
from tests.factories import PASSWORD, make_member, make_org, make_user

pytestmark = pytest.mark.django_db


def invite(owner, email="new@example.com", role=Role.MEMBER):
    return invitation_create(org=owner.organization, email=email, role=role, invited_by=owner.user)


def link_path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def test_invitation_email_carries_the_link_and_a_new_person_joins_with_an_account(
    client, django_capture_on_commit_callbacks
):
    owner = make_member(role=Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True):
        sent = invite(owner, "Ana@Example.com", Role.BILLING)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ana@example.com"]
    assert sent.url in mail.outbox[0].body
    path = link_path(sent.url)
    page = client.get(path)
    assert page.status_code == 200 and "as <strong>Billing</strong>" in page.content.decode()
    response = client.post(
        path, {"password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"}
    )
    assert response.status_code == 302
    user = User.objects.get(email="ana@example.com")
    assert Membership.objects.get(user=user, organization=owner.organization).role == Role.BILLING
    assert (
        client.get(reverse("billing:statements", args=[owner.organization.slug])).status_code == 200
    )


def test_an_existing_account_logs_in_then_joins(client):
    owner = make_member(role=Role.OWNER)
    other = make_member(role=Role.OWNER)  # already has an account elsewhere
    path = link_path(invite(owner, other.user.email, Role.VIEWER).url)
    html = client.get(path).content.decode()
    assert "log in" in html
    client.force_login(other.user)
    assert client.post(path).status_code == 302
    assert Membership.objects.get(user=other.user, organization=owner.organization).role == "viewer"


@pytest.mark.parametrize(
    ("spoil", "reason", "status"),
    [
        ("expired", "expired", 410),
        ("reused", "used", 410),
        ("tampered", "tampered", 400),
        ("other_org", "other_organization", 400),
        ("revoked", "revoked", 410),
        ("resent", "replaced", 410),
    ],
)
def test_a_bad_link_is_refused_with_a_page_that_says_why(client, spoil, reason, status):
    owner = make_member(role=Role.OWNER)
    sent = invite(owner)
    path = link_path(sent.url)
    org_slug, token = path.rstrip("/").split("/")[-2:]
    when = timezone.now()
    if spoil == "expired":
        when += timedelta(days=7, seconds=1)
    elif spoil == "reused":
        assert (
            client.post(
                path, {"password1": "pass-phrase-long-1", "password2": "pass-phrase-long-1"}
            ).status_code
            == 302
        )
        client.logout()
    elif spoil == "tampered":
        path = path.replace(token, token[:-3] + ("abc" if token[-3:] != "abc" else "xyz"))
    elif spoil == "other_org":
        stranger = make_member(role=Role.OWNER)
        path = path.replace(f"/{org_slug}/", f"/{stranger.organization.slug}/")
    elif spoil == "revoked":
        invitation_revoke(invitation=sent.invitation, actor=owner.user)
    elif spoil == "resent":
        invitation_resend(invitation=sent.invitation, actor=owner.user)
    with time_machine.travel(when, tick=False):
        for method in ("get", "post"):
            response = getattr(client, method)(path, {"password1": "x" * 12, "password2": "x" * 12})
            assert response.status_code == status, (method, response.status_code)
            html = response.content.decode()
            assert f'data-reason="{reason}"' in html and "This invitation cannot be used" in html
    assert Membership.objects.filter(organization=owner.organization).count() == (
        2 if spoil == "reused" else 1
    )


def test_a_link_signed_for_one_organizations_invitation_never_joins_another():
    """Even a validly signed payload naming another organization's invitation is refused."""
    from accounts.team import InvitationRefused, invitation_for_token

    a, b = make_member(role=Role.OWNER), make_member(role=Role.OWNER)
    inv = invite(a).invitation
    forged = dumps({"o": b.organization.pk, "i": inv.pk, "n": inv.nonce}, salt=INVITATION_SALT)
    with pytest.raises(InvitationRefused) as refused:
        invitation_for_token(org_slug=b.organization.slug, token=forged)
    assert refused.value.reason == "tampered"
    assert invitation_token(inv) != forged


def test_signed_in_as_someone_else_is_refused(client):
    owner = make_member(role=Role.OWNER)
    path = link_path(invite(owner, "ana@example.com").url)
    client.force_login(make_user(email="bob@example.com"))
    response = client.post(path)
    assert response.status_code == 400 and 'data-reason="wrong_person"' in response.content.decode()
    assert not Membership.objects.filter(user__email="bob@example.com").exists()


def test_inviting_again_renews_the_one_open_invitation():
    owner = make_member(role=Role.OWNER)
    first = invite(owner, role=Role.VIEWER)
    second = invite(owner, role=Role.ADMIN)
    assert Invitation.objects.count() == 1
    assert second.invitation.role == Role.ADMIN and first.url != second.url


def test_admins_cannot_grant_or_touch_the_owner_role():
    owner = make_member(role=Role.OWNER)
    admin = make_member(org=owner.organization, role=Role.ADMIN)
    with pytest.raises(TeamError):
        invitation_create(org=owner.organization, email="x@example.com", role=Role.OWNER,
                          invited_by=admin.user, actor_role=Role.ADMIN)  # fmt: skip
    with pytest.raises(TeamError):
        member_role_change(membership=owner, role=Role.MEMBER, actor=admin.user, actor_role="admin")
    with pytest.raises(TeamError):
        member_remove(membership=owner, actor=admin.user, actor_role=Role.ADMIN)


def test_the_last_owner_can_be_neither_demoted_nor_removed(client):
    owner = make_member(role=Role.OWNER)
    with pytest.raises(TeamError, match="last owner"):
        member_role_change(membership=owner, role=Role.ADMIN, actor=owner.user)
    with pytest.raises(TeamError, match="last owner"):
        member_remove(membership=owner, actor=owner.user)
    # Through the page: refused with a message, nothing changed.
    client.force_login(owner.user)
    url = reverse("accounts:member_role", args=[owner.organization.slug, owner.pk])
    response = client.post(url, {"role": "admin"}, follow=True)
    assert "last owner cannot be demoted" in response.content.decode()
    owner.refresh_from_db()
    assert owner.role == Role.OWNER
    # With a second owner, the first may step down.
    second = make_member(org=owner.organization, role=Role.OWNER)
    member_role_change(membership=owner, role=Role.ADMIN, actor=second.user)
    owner.refresh_from_db()
    assert owner.role == Role.ADMIN


def test_removing_a_member_revokes_their_personal_keys_and_tokens_here_only(client):
    owner = make_member(role=Role.OWNER)
    member = make_member(org=owner.organization, role=Role.MEMBER)
    elsewhere = make_member(user=member.user, org=make_org(), role=Role.MEMBER)
    personal = apikey_create(org=owner.organization, name="mine", kind="personal", user=member.user)
    workspace = apikey_create(org=owner.organization, name="shared", created_by=member.user)
    token = session_token_issue(user=member.user, org=owner.organization)
    other_token = session_token_issue(user=member.user, org=elsewhere.organization)
    client.force_login(owner.user)
    url = reverse("accounts:member_remove", args=[owner.organization.slug, member.pk])
    assert client.post(url).status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert APIKey.objects.get(pk=personal.key.pk).revoked_at is not None
    assert APIKey.objects.get(pk=workspace.key.pk).revoked_at is None
    assert SessionToken.objects.get(pk=token.token.pk).revoked_at is not None
    assert SessionToken.objects.get(pk=other_token.token.pk).revoked_at is None
    # Their token is refused by the API from now on.
    api = client.get("/api/v1/account", HTTP_AUTHORIZATION=f"Bearer {token.secret}")
    assert api.status_code == 401


def test_members_page_lists_pending_invitations_to_managers_only(client):
    owner = make_member(role=Role.OWNER)
    viewer = make_member(org=owner.organization, role=Role.VIEWER)
    invite(owner, "pending@example.com")
    client.force_login(owner.user)
    assert (
        "pending@example.com"
        in client.get(reverse("accounts:members", args=[owner.organization.slug])).content.decode()
    )
    client.force_login(viewer.user)
    html = client.get(reverse("accounts:members", args=[owner.organization.slug])).content.decode()
    assert "pending@example.com" not in html and "Send invitation" not in html


def test_password_too_weak_keeps_the_form(client):
    owner = make_member(role=Role.OWNER)
    path = link_path(invite(owner).url)
    response = client.post(path, {"password1": "123", "password2": "123"})
    assert response.status_code == 400
    assert not User.objects.filter(email="new@example.com").exists()
    assert PASSWORD  # the factories' password is for the other tests' logins


def _accept(invitation):
    return invitation_accept(
        org_slug=invitation.organization.slug,
        token=invitation_token(invitation),
        password="long-enough-pass-1",
    )


def test_a_removed_admins_pending_invitations_stop_working():
    owner = make_member(role=Role.OWNER)
    admin = make_member(org=owner.organization, role=Role.ADMIN)
    sent = invite(admin, email="alt@example.com", role=Role.ADMIN).invitation
    member_remove(membership=admin, actor=owner.user)
    with pytest.raises(InvitationRefused) as refused:
        _accept(sent)
    assert refused.value.reason == "revoked"
    assert not Membership.objects.filter(user__email="alt@example.com").exists()


@pytest.mark.parametrize(
    ("before", "after", "invited", "still_works"),
    [
        (Role.ADMIN, Role.VIEWER, Role.ADMIN, False),
        (Role.ADMIN, Role.MEMBER, Role.BILLING, False),  # a member invites no one
        (Role.OWNER, Role.ADMIN, Role.OWNER, False),
        (Role.OWNER, Role.ADMIN, Role.ADMIN, True),  # an admin may still send that one
    ],
)
def test_a_demoted_senders_invitations_beyond_their_new_role_stop_working(
    before, after, invited, still_works
):
    owner = make_member(role=Role.OWNER)
    sender = make_member(org=owner.organization, role=before)
    sent = invitation_create(
        org=owner.organization, email="alt@example.com", role=invited, invited_by=sender.user,
        actor_role=before,
    ).invitation  # fmt: skip
    member_role_change(membership=sender, role=after, actor=owner.user)
    if still_works:
        assert _accept(sent).role == invited
    else:
        with pytest.raises(InvitationRefused):
            _accept(sent)
        assert not Membership.objects.filter(user__email="alt@example.com").exists()


def test_a_member_made_billing_loses_their_personal_keys_here_as_on_removal(client):
    owner = make_member(role=Role.OWNER)
    member = make_member(org=owner.organization, role=Role.MEMBER)
    personal = apikey_create(org=owner.organization, name="mine", kind="personal", user=member.user)
    workspace = apikey_create(org=owner.organization, name="shared", created_by=member.user)
    before = client.get("/api/v1/account", HTTP_AUTHORIZATION=f"Bearer {personal.secret}")
    assert before.status_code == 200
    member_role_change(membership=member, role=Role.BILLING, actor=owner.user)
    after = client.get("/api/v1/account", HTTP_AUTHORIZATION=f"Bearer {personal.secret}")
    assert after.status_code == 401
    assert APIKey.objects.get(pk=workspace.key.pk).revoked_at is None
