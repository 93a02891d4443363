"""`manage.py reconcile` on a fresh demo finds nothing: the demo's own ingestion and
rollups agree with its raw records at the columns' precision, on SQLite (which sums
decimal columns as floats) and on PostgreSQL alike. Runs on whichever database the suite
uses: the demo's usage through the demo's own code path, over a shorter period."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command

from billing.models import ReconciliationIssue
from ingest.demo import usage_demo_seed
from rollups.models import RollupState
from tests.factories import make_org

pytestmark = pytest.mark.django_db


@time_machine.travel(datetime(2026, 12, 7, 12, 0, tzinfo=UTC), tick=False)
def test_reconcile_finds_nothing_on_a_fresh_demo(capsys):
    org = make_org(name="Demo Labs")
    usage_demo_seed(org=org, days=DAYS)
    assert RollupState.objects.filter(organization=org, dirty=False).count() >= DAYS - 1
    call_command("reconcile", "--days", str(DAYS + 1))  # a mismatch raises (exit 2)
    assert "0 mismatch(es)" in capsys.readouterr().out.splitlines()[-1]
    assert not ReconciliationIssue.objects.exists()


# Three weeks to a fixed day: enough for the sums SQLite got wrong (a day whose query
# credits summed to 0.0790985999999999 for 0.0790986), a third of the demo's cost.
DAYS = 21
