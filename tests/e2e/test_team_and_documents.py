"""In the browser: an owner invites a member, who accepts in a second browser (their own
context) and lands in the console; the owner changes their role and removes them; then
downloads last month's statement as a PDF and a payment's receipt. Screenshots, the PDFs
and the statement's first page (pdftoppm) are saved in tests/e2e/artifacts/."""

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Membership, Role
from billing.services import (
    BillingDetailsFields,
    billing_details_update,
    ledger_post,
    statement_issue,
)
from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, make_member, make_payment

pytestmark = pytest.mark.django_db(transaction=True)


def test_invite_accept_change_role_remove_then_download_documents(
    live_server, page, browser, login
):
    owner = make_member(role=Role.OWNER)
    org = owner.organization
    billing_details_update(org=org, actor=owner.user, fields=BillingDetailsFields(
        legal_name="Acme Labs GmbH", address="Hauptstr. 1\n10115 Berlin", country="Germany",
        tax_id="DE123456789", billing_email="ap@acme.example"))  # fmt: skip
    first = timezone.localdate().replace(day=1)
    last_month = (first - timedelta(days=1)).replace(day=1)
    mid = datetime(last_month.year, last_month.month, 10, tzinfo=UTC)
    ledger_post(org=org, kind="grant", amount=Decimal("100"), reason="Welcome credits",
                idempotency_key="g", at=mid)  # fmt: skip
    ledger_post(org=org, kind="usage", amount=Decimal("-12.34"), reason="Usage: 40 records",
                idempotency_key="u", at=mid + timedelta(days=3))  # fmt: skip
    statement_issue(org=org, month=last_month)
    make_payment(org=org, amount_minor=2500)

    login(page, live_server.url, owner.user.email, PASSWORD)
    page.get_by_role("link", name="Settings", exact=True).click()
    page.get_by_role("link", name="Members", exact=True).click()
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent to newcomer@example.com").wait_for()
    link = re.search(r"https?://\S+/accounts/invitations/\S+/", mail.outbox[-1].body).group(0)
    path = re.sub(r"^https?://[^/]+", "", link)

    newcomer = browser.new_context(viewport={"width": 1200, "height": 800})
    other = newcomer.new_page()
    other.set_default_timeout(15_000)
    other.goto(live_server.url + path)
    other.get_by_label("Password", exact=True).fill("a-long-pass-phrase-9")
    other.get_by_label("Password again").fill("a-long-pass-phrase-9")
    other.screenshot(path=str(ARTIFACTS / "invitation-accept.png"))
    other.get_by_role("button", name="Create account and join").click()
    other.wait_for_selector("[data-testid=chip-email]")
    assert other.get_by_test_id("chip-email").inner_text() == "newcomer@example.com"

    page.reload()
    row = page.get_by_test_id("member-newcomer@example.com")
    row.get_by_label("Role of newcomer@example.com").select_option("billing")
    row.get_by_role("button", name="Change role").click()
    page.get_by_text("newcomer@example.com is now Billing.").wait_for()
    page.screenshot(path=str(ARTIFACTS / "members-after-role-change.png"), full_page=True)
    assert (
        Membership.objects.get(organization=org, user__email="newcomer@example.com").role
        == "billing"
    )
    page.get_by_role("button", name="Remove newcomer@example.com").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove member").click()
    page.get_by_text("Removed newcomer@example.com").wait_for()
    assert not Membership.objects.filter(
        organization=org, user__email="newcomer@example.com"
    ).exists()
    assert other.reload().status == 404  # the organization is gone for them
    newcomer.close()

    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Finance", exact=True).click()
    page.get_by_role("link", name="Statements", exact=True).click()
    page.get_by_role("link", name=f"{last_month:%B %Y}").click()
    assert page.get_by_test_id("closing").inner_text() == "87.66"
    page.screenshot(path=str(ARTIFACTS / "statement-page.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_test_id("statement-pdf").click()
    pdf_path = ARTIFACTS / "statement.pdf"
    download.value.save_as(str(pdf_path))
    assert pdf_path.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftoppm"):
        first_page = str(ARTIFACTS / "statement-pdf-page1")
        command = ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile"]
        subprocess.run([*command, str(pdf_path), first_page], check=True)

    nav.get_by_role("link", name="Finance", exact=True).click()
    page.get_by_test_id("receipt-link").first.click()
    assert "$25.00 USD" in page.get_by_test_id("receipt-amount").inner_text()
    page.screenshot(path=str(ARTIFACTS / "receipt-page.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_test_id("receipt-pdf").click()
    receipt_path = ARTIFACTS / "receipt.pdf"
    download.value.save_as(str(receipt_path))
    assert receipt_path.read_bytes().startswith(b"%PDF")
