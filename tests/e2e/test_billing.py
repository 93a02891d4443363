import pytest
from django.utils import timezone

from accounts.models import Role
from billing.models import LedgerEntry
from tests.factories import PASSWORD, make_member

pytestmark = pytest.mark.django_db(transaction=True)


def add_credit(page, *, preset: str, card: str) -> None:
    """Amount → payment details → confirm, through the real forms."""
    page.get_by_role("link", name="Finance", exact=True).click()
    page.get_by_test_id("add-credit").click()
    page.get_by_label(preset, exact=True).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Card number").fill(card)
    page.get_by_label("Expiry (MM/YY)").fill("12/34")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Pay").click()


def test_add_credit_with_the_success_card_then_see_the_decline(live_server, page, login):
    member = make_member(role=Role.OWNER)
    login(page, live_server.url, member.user.email, PASSWORD)

    add_credit(page, preset="$25", card="4242 4242 4242 4242")
    result = page.get_by_test_id("payment-result")
    assert "Payment succeeded" in result.inner_text()
    assert page.get_by_test_id("chip-balance").inner_text() == "25.00 credits"
    today = timezone.localdate()
    expected_date = f"{today.day} {today:%b %Y}"
    assert page.get_by_test_id("result-last-payment").inner_text() == expected_date

    page.get_by_role("link", name="Back to Finance").click()
    assert page.get_by_test_id("balance").inner_text() == "25.00"
    assert page.get_by_test_id("last-payment").inner_text() == expected_date
    page.screenshot(path="tests/e2e/artifacts/finance-after-payment.png", full_page=True)

    add_credit(page, preset="$10", card="4000000000000002")
    error = page.get_by_test_id("payment-error")
    assert "Your card was declined" in error.inner_text()
    assert page.get_by_test_id("chip-balance").inner_text() == "25.00 credits"
    page.screenshot(path="tests/e2e/artifacts/payment-declined.png")
    assert LedgerEntry.objects.filter(organization=member.organization).count() == 1
