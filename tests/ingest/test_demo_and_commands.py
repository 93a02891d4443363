"""The demo's usage (through the ingestion service) and the API keys the commands print."""

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import APIKey, Organization
from accounts.services import apikey_revoke
from billing.selectors import credit_balance, ledger_sum
from ingest.demo import usage_demo_seed
from tests.factories import make_org, make_user
from usage.models import Controller, IngestBatch, Job, MatchingRun, Query, WorkerSession

pytestmark = pytest.mark.django_db


def counts(org) -> dict:
    return {
        model.__name__: model.objects.filter(organization=org).count()
        for model in (Query, WorkerSession, MatchingRun, Job, IngestBatch)
    }


def works(client, secret: str) -> bool:
    response = client.post(
        "/api/v1/usage/records",
        data=json.dumps({"records": []}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    return response.status_code == 200


def test_demo_usage_is_varied_charged_and_idempotent(client):
    org = make_org(slug="acme-labs")
    make_user(email="ana@acme.example")
    first = usage_demo_seed(org=org, days=14)
    assert first.accepted == first.records_sent > 1000
    before, balance = counts(org), credit_balance(org=org)
    assert balance == ledger_sum(org=org)

    second = usage_demo_seed(org=org, days=14)
    assert second.api_key == first.api_key and works(client, second.api_key)
    assert second.accepted == 0
    assert counts(org) == before and credit_balance(org=org) == balance

    jobs = Job.objects.filter(organization=org)
    assert {"completed", "failed", "cancelled"} <= set(jobs.values_list("status", flat=True))
    assert jobs.filter(api_key__isnull=True).exists()  # unattributed
    assert jobs.filter(controller__isnull=True).exists() and jobs.filter(controller__isnull=False)
    assert Query.objects.filter(organization=org).values("model").distinct().count() == 4
    assert Query.objects.filter(organization=org).values("endpoint").distinct().count() >= 3
    assert Query.objects.filter(organization=org).values("member").distinct().count() >= 3
    online = {c.name: c.online for c in Controller.objects.filter(organization=org)}
    assert online == {"dgx-01": True, "gpu-box-02": True, "lab-node-03": False}
    assert APIKey.objects.filter(organization=org, revoked_at__isnull=False).count() == 1


def test_a_revoked_demo_key_is_replaced_on_the_next_run(client):
    org = make_org(slug="acme-labs")
    first = usage_demo_seed(org=org, days=1)
    apikey_revoke(key=APIKey.objects.get(organization=org, name="Lab workstation"))
    second = usage_demo_seed(org=org, days=1)
    assert second.api_key != first.api_key
    assert works(client, second.api_key) and not works(client, first.api_key)


def test_the_demo_command_prints_a_working_api_key(client):
    out = StringIO()
    call_command("demo", "--no-migrate", stdout=out)
    secret = re.search(r"^API key: (sk-av-\S+)$", out.getvalue(), re.M).group(1)
    assert works(client, secret)
    key = APIKey.objects.get(secret_hash__isnull=False, last_four=secret[-4:], kind="workspace")
    assert key.organization.slug == "acme-labs"
    for line in ("URL: ", "Email: ", "Password: "):
        assert re.search(rf"^{line}\S+$", out.getvalue(), re.M)
    # The four lines are a contract (scripts read them); the operator's login comes after.
    labels = [line.split(": ", 1)[0] for line in out.getvalue().splitlines()]
    assert labels[:6] == [
        "URL", "Email", "Password", "API key", "Operator email", "Operator password",
    ]  # fmt: skip
    operator = dict(line.split(": ", 1) for line in out.getvalue().splitlines()[4:6])
    login = client.post(
        "/admin/login/?next=/admin/",
        {"username": operator["Operator email"], "password": operator["Operator password"]},
    )
    assert login.status_code == 302 and login["Location"] == "/admin/"
    admin = client.get("/admin/")
    assert admin.status_code == 200
    assert "Usage Console administration" in admin.content.decode()
    assert 'data-testid="platform-overview"' in admin.content.decode()


def test_createorg_prints_a_working_workspace_key(client):
    out = StringIO()
    call_command(
        "createorg", "--name", "Initech", "--tier", "free", "--owner", "b@i.example", stdout=out
    )
    secret = re.search(r"^API key: (sk-av-\S+)$", out.getvalue(), re.M).group(1)
    assert works(client, secret)
    key = APIKey.objects.get(organization=Organization.objects.get(name="Initech"))
    assert key.kind == "workspace" and key.display.endswith(secret[-4:])
