"""Why did my balance drop: every usage debit links to what it charged."""

from decimal import Decimal

import pytest

from accounts.models import Role
from billing.models import LedgerEntry
from ingest.services.ingest import usage_records_ingest
from tests.factories import grant_credits, make_api_key, make_controller, make_member, make_org

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

BATCH = [
    {"id": "q-1", "kind": "query", "occurred_at": "2026-11-20T10:00:00Z",
     "model": "llama-3.1-8b", "input_tokens": 600_000, "output_tokens": 400_000},
    {"id": "q-2", "kind": "query", "occurred_at": "2026-11-20T10:05:00Z",
     "model": "llama-3.1-8b", "input_tokens": 1_000_000, "output_tokens": 0},
    {"id": "w-1", "kind": "worker_session", "model": "llama-3.1-70b",
     "started_at": "2026-11-20T08:00:00Z", "ended_at": "2026-11-20T10:00:00Z"},
    {"id": "j-1", "kind": "job", "status": "completed", "cores": 8, "controller": "dgx-01",
     "submitted_at": "2026-11-20T07:59:00Z", "started_at": "2026-11-20T08:00:00Z",
     "ended_at": "2026-11-20T10:00:00Z"},
]  # fmt: skip


@pytest.fixture
def owner():
    member = make_member(role=Role.VIEWER)
    grant_credits(org=member.organization)
    make_controller(org=member.organization, name="dgx-01")
    return member


def test_a_batch_debit_links_to_a_page_that_breaks_it_down_to_the_debit(client, owner):
    org = owner.organization
    key, _ = make_api_key(org=org, name="Lab workstation")
    result = usage_records_ingest(org=org, records=BATCH, api_key=key)
    debit = LedgerEntry.objects.get(organization=org, kind="usage")
    client.force_login(owner.user)

    finance = client.get(f"/o/{org.slug}/finance/").content.decode()
    link = f"/o/{org.slug}/usage/charges/batch/{result.batch_id}/"
    assert f'href="{link}"' in finance

    page = client.get(link)
    assert page.status_code == 200
    lines = page.context["charges"].lines
    # By hand: 2M tokens of llama-3.1-8b at 0.10/M = 0.20; 2 h of the 70b worker at
    # 2.40/h = 4.80; 8 cores × 2 h on a controller at 0.03 = 0.48.
    assert [(x.kind, x.item, x.api_key, x.records, x.credits) for x in lines] == [
        ("Query", "llama-3.1-8b", "Lab workstation", 2, Decimal("0.2")),
        ("Worker session", "llama-3.1-70b", "Lab workstation", 1, Decimal("4.8")),
        ("Job", "dgx-01", "Lab workstation", 1, Decimal("0.48")),
    ]
    assert page.context["charges"].credits == -debit.amount == Decimal("5.48")
    assert 'data-testid="charge-total">5.48<' in page.content.decode()  # the one credit rule


def test_a_job_charged_when_it_ended_links_to_the_job(client, owner):
    from ingest.services.jobs import job_submit, job_transition

    org = owner.organization
    job = job_submit(
        org=org,
        api_key=None,
        record={"id": "live-1", "cores": 2, "submitted_at": "2026-11-20T09:00:00Z"},
    ).job
    job_transition(org=org, client_id="live-1", status="running")
    job_transition(org=org, client_id="live-1", status="completed", core_hours=Decimal("3"))
    debit = LedgerEntry.objects.get(organization=org, kind="usage")
    assert debit.reference == f"job:{job.pk}"
    client.force_login(owner.user)
    page = client.get(f"/o/{org.slug}/usage/charges/job/{job.pk}/")
    assert page.status_code == 200
    [line] = page.context["charges"].lines
    assert (line.item, line.api_key, line.credits) == (
        "Managed compute",
        "Unattributed",
        Decimal("0.36"),
    )
    assert -debit.amount == Decimal("0.36")  # 3 core-hours × 0.12


def test_another_organizations_charges_are_404(client, owner):
    org = owner.organization
    result = usage_records_ingest(org=org, records=BATCH)
    stranger = make_member(org=make_org())
    client.force_login(stranger.user)
    for path in (f"charges/batch/{result.batch_id}/", "charges/job/1/"):
        assert client.get(f"/o/{org.slug}/usage/{path}").status_code == 404
        # Their own slug with our id is a 404 too: ids are looked up inside the org.
        assert client.get(f"/o/{stranger.organization.slug}/usage/{path}").status_code == 404


def test_a_batch_says_why_its_total_is_fewer_than_the_records_accepted(client, owner):
    org = owner.organization
    running = [
        {"id": f"j-run-{n}", "kind": "job", "status": "running", "cores": 2,
         "controller": "dgx-01", "submitted_at": "2026-11-20T09:00:00Z",
         "started_at": "2026-11-20T09:01:00Z"}
        for n in (1, 2)
    ]  # fmt: skip
    first = usage_records_ingest(org=org, records=BATCH + running)
    assert len(first.accepted) == 6
    client.force_login(owner.user)
    page = client.get(f"/o/{org.slug}/usage/charges/batch/{first.batch_id}/").content.decode()
    # Total counts 4 (2 queries, 1 session, 1 job ended); the 2 running jobs are left out.
    assert "6 accepted" in page
    assert (
        "Total counts the 4 records this debit charged; of the 6 accepted, it leaves out "
        "2 jobs still running (charged by the batch that ends them)."
    ) in page

    # A later batch ends one of them: its record is charged there (its Total matches).
    ended = {**running[0], "status": "completed", "ended_at": "2026-11-20T10:01:00Z"}
    second = usage_records_ingest(org=org, records=[ended])
    page = client.get(f"/o/{org.slug}/usage/charges/batch/{second.batch_id}/").content.decode()
    assert 'data-testid="batch-gap"' not in page
    page = client.get(f"/o/{org.slug}/usage/charges/batch/{first.batch_id}/").content.decode()
    assert "1 job still running (charged by the batch that ends them) and 1 job charged by " in (
        page
    )


def test_a_batch_whose_total_matches_says_nothing_more(client, owner):
    org = owner.organization
    result = usage_records_ingest(org=org, records=BATCH)
    client.force_login(owner.user)
    page = client.get(f"/o/{org.slug}/usage/charges/batch/{result.batch_id}/").content.decode()
    assert 'data-testid="batch-gap"' not in page
