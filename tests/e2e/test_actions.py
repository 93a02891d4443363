"""In chromium: destructive actions ask in a dialog that names what will happen (Cancel
changes nothing), end with a message saying what happened, and a reload after each POST
makes nothing; without script the same confirmation is a page; a billing member who
follows a link to API keys gets the console's 403 page saying why."""

import pytest
from playwright.sync_api import expect

from accounts.models import APIKey, Membership, Role
from alerts.models import AlertRule
from spend.models import Budget
from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, make_api_key, make_controller, make_member
from usage.models import Controller

pytestmark = pytest.mark.django_db(transaction=True)


def _confirm(page, button: str, question: str) -> None:
    """Answer the open confirmation dialog, after checking what it asks."""
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_contain_text(question)
    dialog.get_by_role("button", name=button).click()


def _reload_makes_nothing(page, count) -> None:
    before = count()
    page.reload()
    page.wait_for_load_state()
    assert count() == before


def test_create_revoke_rotate_remove_delete_each_confirmed_and_reported(page, live_server, login):
    owner = make_member(role=Role.OWNER)
    org = owner.organization
    colleague = make_member(org=org, role=Role.MEMBER)
    make_controller(org=org, name="dgx-01")
    key, _ = make_api_key(org=org, name="ci-gateway")
    Budget.objects.create(
        organization=org, scope="api_key", api_key=key, period="month", soft_limit=5
    )
    AlertRule.objects.create(organization=org, kind="balance", threshold=10)
    base = f"{live_server.url}/o/{org.slug}"
    login(page, live_server.url, owner.user.email, PASSWORD)

    # Create a key: its secret shows once, with a message; a reload neither repeats the
    # POST nor shows the secret again.
    page.goto(f"{base}/settings/keys/")
    page.get_by_label("Name").fill("Lab workstation")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("Created the key Lab workstation")).to_be_visible()
    expect(page.get_by_test_id("new-secret")).to_be_visible()
    _reload_makes_nothing(page, lambda: APIKey.objects.filter(organization=org).count())
    expect(page.get_by_test_id("new-secret")).to_have_count(0)
    expect(page.get_by_text("Created the key Lab workstation")).to_have_count(0)

    # Revoke: the dialog names the key; Cancel changes nothing and gives focus back.
    revoke = page.get_by_role("button", name="Revoke ci-gateway")
    revoke.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Programs sending")
    page.screenshot(path=str(ARTIFACTS / "actions-revoke-dialog.png"))
    dialog.get_by_role("link", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(revoke).to_be_focused()
    key.refresh_from_db()
    assert key.revoked_at is None
    revoke.click()
    _confirm(page, "Revoke key", "Revoke the API key “ci-gateway”?")
    expect(page.get_by_text("Revoked ci-gateway")).to_be_visible()
    key.refresh_from_db()
    assert key.revoked_at is not None
    _reload_makes_nothing(page, lambda: APIKey.objects.filter(revoked_at__isnull=True).count())

    # Rotate a controller's token: the dialog warns the running controller is cut off.
    page.goto(f"{base}/usage/controllers/")
    old_hash = Controller.objects.get(organization=org).token_hash
    page.get_by_role("button", name="New token for dgx-01").click()
    expect(page.get_by_role("dialog")).to_contain_text("the running controller is cut off")
    _confirm(page, "Issue new token", "Issue a new token for “dgx-01”?")
    expect(page.get_by_text("Issued a new token for dgx-01")).to_be_visible()
    expect(page.get_by_test_id("new-token")).to_be_visible()
    rotated = Controller.objects.get(organization=org).token_hash
    assert rotated != old_hash
    page.reload()
    expect(page.get_by_test_id("new-token")).to_have_count(0)
    assert Controller.objects.get(organization=org).token_hash == rotated

    # Remove a budget, then delete an alert rule.
    page.goto(f"{base}/usage/budgets/")
    page.get_by_test_id("budget-card").get_by_text("Change", exact=True).click()
    page.get_by_test_id("remove-budget").click()
    _confirm(page, "Remove budget", "Remove the monthly API key budget for ci-gateway?")
    expect(page.get_by_text("Removed the monthly API key budget for ci-gateway.")).to_be_visible()
    assert not Budget.objects.filter(organization=org).exists()

    page.goto(f"{base}/settings/alerts/")
    page.get_by_test_id("delete-rule").click()
    _confirm(page, "Delete rule", "Delete the alert rule")
    expect(page.get_by_text("Deleted the alert rule")).to_be_visible()
    assert not AlertRule.objects.filter(organization=org).exists()

    # Remove a member.
    page.goto(f"{base}/settings/members/")
    page.get_by_role("button", name=f"Remove {colleague.user.email}").click()
    _confirm(page, "Remove member", f"Remove {colleague.user.email} from {org.name}?")
    expect(page.get_by_text(f"Removed {colleague.user.email}")).to_be_visible()
    assert not Membership.objects.filter(pk=colleague.pk).exists()
    _reload_makes_nothing(page, lambda: Membership.objects.filter(organization=org).count())
    page.screenshot(path=str(ARTIFACTS / "actions-member-removed.png"), full_page=True)


def test_without_script_the_confirmation_is_a_page(browser, live_server, login):
    owner = make_member(role=Role.OWNER)
    org = owner.organization
    key, _ = make_api_key(org=org, name="ci-gateway")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(owner.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/o/{org.slug}/settings/keys/")
    page.get_by_role("button", name="Revoke ci-gateway").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke the API key “ci-gateway”?")
    page.screenshot(path=str(ARTIFACTS / "actions-confirm-page-390.png"), full_page=True)
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_text("Revoked ci-gateway")).to_be_visible()
    key.refresh_from_db()
    assert key.revoked_at is not None
    context.close()


def test_a_billing_member_following_a_link_to_keys_sees_why_in_the_console(
    page, live_server, login
):
    billing = make_member(role=Role.BILLING)
    org = billing.organization
    login(page, live_server.url, billing.user.email, PASSWORD)
    response = page.goto(f"{live_server.url}/o/{org.slug}/settings/keys/")
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("You can’t open this page")
    expect(page.get_by_text("you are a billing member here")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "actions-403.png"), full_page=True)
    page.get_by_role("link", name=f"Back to {org.name}").click()
    expect(page).to_have_url(f"{live_server.url}/o/{org.slug}/")
