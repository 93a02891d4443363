"""The demo as a first run shows it: statements of every closed month, audit events at the
times of their actions, controllers that stay online while it is served, a chosen port."""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.core.management import CommandError, call_command

from accounts.models import AuditEvent, Membership
from billing.models import Receipt, Statement
from billing.services import ledger_post
from console.demo import demo_keep_current, demo_seed
from tests.factories import make_member, make_org
from usage.models import Controller, Query

pytestmark = pytest.mark.django_db

# A Monday morning in December: the demo's first payment (180 days before) is in June.
NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def online() -> dict[str, bool]:
    return {c.name: c.online for c in Controller.objects.filter(organization__slug="acme-labs")}


def test_the_demo_issues_a_statement_for_every_closed_month_without_emailing_them():
    with time_machine.travel(NOW, tick=True):
        logins = demo_seed(days=3)
    statements = Statement.objects.filter(organization=logins.organization).order_by("month")
    assert [s.month for s in statements] == [date(2026, m, 1) for m in range(6, 12)]
    # Issued as the beat would have, twenty minutes into the next month, and emailed then.
    assert statements.last().issued_at == datetime(2026, 12, 1, 0, 20, tzinfo=UTC)
    assert mail.outbox == []
    # Each opens where the one before closed; June opens at nothing (the first payment).
    assert statements.first().opening_balance == 0
    for before, after in zip(statements, statements[1:], strict=False):
        assert after.opening_balance == before.closing_balance


def test_demo_audit_events_are_dated_at_their_actions():
    with time_machine.travel(NOW, tick=True):
        logins = demo_seed(days=3)
    events = AuditEvent.objects.filter(organization=logins.organization)
    paid = sorted(e.created_at.date() for e in events.filter(action="payment.succeeded"))
    # 180, 120, 75, 40 and 12 days before the organization was made (this morning).
    assert paid == [
        date(2026, 6, 10), date(2026, 8, 9), date(2026, 9, 23), date(2026, 10, 28),
        date(2026, 11, 25),
    ]  # fmt: skip
    # Their receipts are dated at the payments too, not when the demo ran.
    receipts = Receipt.objects.filter(organization=logins.organization)
    assert sorted(r.issued_at.date() for r in receipts) == paid
    (declined,) = events.filter(action="payment.failed")
    assert declined.created_at.date() == date(2026, 10, 27)
    (revoked,) = events.filter(action="api_key.revoked")
    assert revoked.created_at.date() == date(2026, 11, 7)
    assert not events.filter(created_at__date=NOW.date()).exists()
    # People were members before the payments they could have made.
    owner = Membership.objects.get(organization=logins.organization, role="owner")
    assert owner.created_at.date() < date(2026, 6, 10)


def test_served_demo_controllers_stay_online_and_the_hour_brings_usage():
    with time_machine.travel(NOW, tick=True) as clock:
        demo_seed(days=1)
        assert online() == {"dgx-01": True, "gpu-box-02": True, "lab-node-03": False}
        queries = Query.objects.count()
        clock.shift(timedelta(minutes=11))
        assert online()["dgx-01"] is False  # what a served demo showed before
        demo_keep_current()
        assert online() == {"dgx-01": True, "gpu-box-02": True, "lab-node-03": False}
        clock.shift(timedelta(hours=3))
        demo_keep_current(refresh=True)
        assert online()["gpu-box-02"] is True
        assert Query.objects.count() > queries


def test_demo_takes_a_port_and_prints_its_steps_apart_from_the_logins(monkeypatch):
    served = []
    monkeypatch.setattr(
        "console.management.commands.demo.call_command",
        lambda name, *args, **kwargs: served.append((name, args)),
    )
    monkeypatch.setattr(settings, "SITE_URL_FROM_ENVIRONMENT", False)
    monkeypatch.setattr(settings, "SITE_URL", "http://127.0.0.1:8000")
    out, err = StringIO(), StringIO()
    with time_machine.travel(NOW, tick=True):
        call_command("demo", "--serve", "--port", "8301", stdout=out, stderr=err)
    assert served[-1] == ("runserver", ("127.0.0.1:8301",))
    assert settings.SITE_URL == "http://127.0.0.1:8301"
    lines = out.getvalue().splitlines()
    assert lines[0] == "URL: http://127.0.0.1:8301/"
    assert [line.split(": ", 1)[0] for line in lines[:6]] == [
        "URL", "Email", "Password", "API key", "Operator email", "Operator password",
    ]  # fmt: skip
    steps = err.getvalue().splitlines()
    assert steps[0] == "demo: migrating the database"
    assert any(re.match(r"demo: usage of 1 to 30 November 2026", s) for s in steps)
    assert "demo: statements of June 2026 to November 2026" in steps
    assert re.match(r"demo: ready in \d+ s$", steps[-1])


def test_demo_refuses_a_port_out_of_range():
    with pytest.raises(CommandError, match="--port must be 1 to 65535"):
        call_command("demo", "--no-migrate", "--port", "70000")


def test_statements_issue_issues_closed_months_once_and_emails_them(
    django_capture_on_commit_callbacks,
):
    owner = make_member(org=make_org(slug="initech"), role="owner")
    with time_machine.travel(datetime(2026, 9, 15, tzinfo=UTC)):
        ledger_post(
            org=owner.organization,
            kind="grant",
            amount=Decimal(100),
            reason="x",
            idempotency_key="g",
        )
    out = StringIO()
    with time_machine.travel(NOW, tick=True):
        with django_capture_on_commit_callbacks(execute=True):
            call_command("statements_issue", stdout=out)
        assert out.getvalue().splitlines() == [
            "initech: September 2026, October 2026, November 2026",
            "Issued 3 statements.",
        ]
        assert len(mail.outbox) == 3 and mail.outbox[0].to == [owner.user.email]
        again = StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("statements_issue", "--org", "initech", stdout=again)
    assert again.getvalue().splitlines() == ["initech: none due", "Issued 0 statements."]
    assert Statement.objects.count() == 3 and len(mail.outbox) == 3
    with pytest.raises(CommandError, match="no organization nowhere"):
        call_command("statements_issue", "--org", "nowhere")
