import pytest

from accounts.models import Role
from alerts.models import AlertKind, AlertNotification, AlertRule
from alerts.services import alerts_evaluate
from tests.factories import PASSWORD, make_alert_rule, make_member

pytestmark = pytest.mark.django_db(transaction=True)


def test_banner_dismisses_in_place_and_a_rule_is_previewed_then_saved(live_server, page, login):
    member = make_member(role=Role.OWNER)
    org = member.organization
    make_alert_rule(org=org, kind=AlertKind.BALANCE, threshold=10)
    alerts_evaluate(org=org)  # balance 0: the rule fires
    login(page, live_server.url, member.user.email, PASSWORD)

    banner = page.get_by_test_id("alert-banner")
    assert "The credit balance is 0.00 credits, below 10.00." in banner.inner_text()
    url_before = page.url
    banner.get_by_role("button", name="Dismiss this alert").click()
    page.wait_for_selector(".alert-banner-item", state="detached")
    assert page.url == url_before  # swapped out by htmx, no navigation
    assert AlertNotification.objects.get().dismissed_by.get() == member.user

    page.get_by_role("link", name="Settings", exact=True).click()
    page.get_by_role("link", name="Alert rules and notifications").click()
    page.get_by_test_id("new-rule").click()
    page.get_by_label("Alert when").select_option("balance")
    page.get_by_label("Threshold").fill("5")
    page.get_by_label("Threshold").press("Tab")
    preview = page.get_by_test_id("alert-preview")
    preview.get_by_text("The balance after every ledger entry.").wait_for()  # htmx swapped it
    assert "balance 0.00 (no credits yet)" in preview.inner_text()
    page.screenshot(path="tests/e2e/artifacts/alert-rule-preview.png", full_page=True)
    page.get_by_role("button", name="Save rule").click()
    assert "Alert rule saved." in page.inner_text("body")
    assert AlertRule.objects.filter(organization=org, kind="balance").count() == 2
