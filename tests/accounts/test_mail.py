"""Links in emails start at SITE_URL and survive copy and paste from the raw message."""

import io
import re

import pytest
from django.core import mail
from django.core.mail.backends.console import EmailBackend as ConsoleBackend

from accounts.models import Role
from accounts.team import invitation_create
from tests.factories import make_member, make_org

pytestmark = pytest.mark.django_db


def printed(message) -> str:
    """The message as the embedded default's console backend prints it."""
    stream = io.StringIO()
    ConsoleBackend(stream=stream).send_messages([message])
    return stream.getvalue()


def test_the_invitation_link_starts_at_site_url_and_prints_whole(
    settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "http://127.0.0.1:8301"
    # A long organization slug makes the link longer than a mail line's usual 78.
    owner = make_member(org=make_org(slug="a-rather-long-organization-slug"), role=Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True):
        sent = invitation_create(
            org=owner.organization, email="ana@example.com", role=Role.MEMBER, invited_by=owner.user
        )
    assert sent.url.startswith("http://127.0.0.1:8301/accounts/invitations/")
    assert len(sent.url) > 78
    raw = printed(mail.outbox[0])
    assert "Content-Transfer-Encoding: 7bit" in raw
    assert "quoted-printable" not in raw
    # The whole link on one line, exactly: what a person selects in the terminal works.
    assert sent.url in raw.splitlines()


def test_a_body_that_is_not_ascii_goes_8bit_with_the_link_whole(
    settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://console.example.com"
    owner = make_member(org=make_org(name="Café Zürich", slug="cafe-zurich"), role=Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True):
        sent = invitation_create(
            org=owner.organization, email="ana@example.com", role=Role.ADMIN, invited_by=owner.user
        )
    raw = printed(mail.outbox[0])
    assert "Content-Transfer-Encoding: 8bit" in raw
    assert "Café Zürich" in raw
    assert sent.url in raw.splitlines()
    assert not re.search(r"=\r?\n", raw)


def test_the_password_reset_link_prints_whole(client):
    user = make_member(role=Role.MEMBER).user
    client.post("/accounts/password_reset/", {"email": user.email})
    (message,) = mail.outbox
    raw = printed(message)
    (link,) = [line for line in raw.splitlines() if "/accounts/reset/" in line]
    assert link.startswith("http://testserver/accounts/reset/") and link.endswith("/")
    assert "quoted-printable" not in raw
    assert client.get(link.removeprefix("http://testserver"), follow=True).status_code == 200
