"""A statement's usage subtotals by project: records sent through three projects' keys
(and one without a key, which lands in the Default project), every subtotal worked out
by hand from the records and the price list; the page, the PDF and the CSV carry them.
Statements are the organization's bill: a member, limited to a project or not, never
opens one."""

import io
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.urls import reverse
from pypdf import PdfReader

from accounts.models import Role
from accounts.projects import project_default_for, project_grant_set
from billing.services import ledger_post, statement_issue
from ingest.services.ingest import usage_records_ingest
from tests.factories import make_api_key, make_member, make_project, make_user

pytestmark = pytest.mark.django_db

MARCH = date(2026, 3, 1)


def query(client_id, model, tokens, occurred):
    return {"id": client_id, "kind": "query", "model": model, "input_tokens": tokens,
            "output_tokens": 0, "occurred_at": occurred.isoformat()}  # fmt: skip


@pytest.fixture
def three_projects():
    owner = make_member(role=Role.OWNER)
    org = owner.organization
    org.time_zone = "UTC"
    org.save()
    default = project_default_for(org=org)
    research = make_project(org=org, name="Research")
    production = make_project(org=org, name="Production app")
    key_d, _ = make_api_key(org=org, name="D", project=default)
    key_r, _ = make_api_key(org=org, name="R", project=research)
    key_p, _ = make_api_key(org=org, name="P", project=production)
    ledger_post(org=org, kind="grant", amount=D("50"), reason="Welcome credits",
                idempotency_key="g1", at=datetime(2026, 3, 1, tzinfo=UTC))  # fmt: skip
    at = datetime(2026, 3, 10, 9, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        # Prices: llama-3.1-8b 0.10 per million tokens, llama-3.1-70b 0.90. Default: 1.00
        # and, sent by an operator's tool without a key, 0.10; Research 1.80 + 0.30;
        # Production app 0.45.
        usage_records_ingest(
            org=org, api_key=key_d, records=[query("d1", "llama-3.1-8b", 10_000_000, at)]
        )
        usage_records_ingest(
            org=org,
            api_key=key_r,
            records=[
                query("r1", "llama-3.1-70b", 2_000_000, at),
                query("r2", "llama-3.1-8b", 3_000_000, at),
            ],
        )
        usage_records_ingest(
            org=org, api_key=key_p, records=[query("p1", "llama-3.1-70b", 500_000, at)]
        )
        usage_records_ingest(org=org, records=[query("o1", "llama-3.1-8b", 1_000_000, at)])
    statement = statement_issue(org=org, month=MARCH, now=datetime(2026, 4, 1, 1, tzinfo=UTC))
    return owner, research, statement


EXPECTED = {"Default": D("-1.10"), "Research": D("-2.10"), "Production app": D("-0.45")}


def test_subtotals_by_project_equal_the_records_and_sum_to_the_usage_total(three_projects):
    _owner, _research, statement = three_projects
    usage = statement.content["usage"]
    by_project = {label: D(amount) for label, amount in usage["by_project"]}
    assert by_project == EXPECTED
    assert D(statement.content["totals"]["usage"]) == D("-3.65")
    assert sum(by_project.values()) == D("-3.65")
    # The other tables split the same total.
    assert sum(D(a) for _, a in usage["by_api_key"]) == D("-3.65")


def test_page_pdf_and_csv_show_the_project_subtotals(client, three_projects):
    owner, _research, statement = three_projects
    client.force_login(owner.user)
    slug = owner.organization.slug
    html = client.get(reverse("billing:statement", args=[slug, statement.pk])).content.decode()
    assert "Usage by project" in html and "Production app" in html and "-2.10" in html
    pdf = client.get(reverse("billing:statement_pdf", args=[slug, statement.pk])).content
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for expected in ("Usage by project", "Research", "-2.10", "Production app", "-0.45"):
        assert expected in text, expected
    csv = client.get(reverse("billing:statement_csv", args=[slug, statement.pk]))
    rows = [
        line.split(",") for line in b"".join(csv.streaming_content).decode("utf-8-sig").splitlines()
    ]
    shown = {r[2]: D(r[3]) for r in rows if r[0] == "usage_by_project"}
    assert shown == EXPECTED


def test_a_member_limited_to_a_project_opens_no_statement(client, three_projects):
    owner, research, statement = three_projects
    org = owner.organization
    member = make_member(org=org, user=make_user(), role=Role.MEMBER)
    project_grant_set(project=research, membership=member, role="member", actor=owner.user)
    client.force_login(member.user)
    assert client.get(reverse("billing:statements", args=[org.slug])).status_code == 403
    for name in ("billing:statement", "billing:statement_pdf", "billing:statement_csv"):
        assert client.get(reverse(name, args=[org.slug, statement.pk])).status_code == 403
