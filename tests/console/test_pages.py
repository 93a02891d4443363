import pytest

from tests.factories import make_member

pytestmark = pytest.mark.django_db


def test_pages_send_the_csrf_token_for_htmx_and_a_strict_csp(client):
    member = make_member()
    client.force_login(member.user)
    response = client.get(f"/o/{member.organization.slug}/")
    html = response.content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_htmx_post_without_the_csrf_header_is_refused(client):
    from django.test import Client

    member = make_member()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member.user)
    response = strict.post("/accounts/logout/", HTTP_HX_REQUEST="true")
    assert response.status_code == 403
