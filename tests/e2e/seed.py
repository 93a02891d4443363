"""One small organization with something on every screen, for the browser tests.

Quicker than `manage.py demo` (a second, not half a minute) and with the cases the
screens must hold: jobs on a controller and on managed compute, queries of four models,
a usage batch charged in fractions of a cent, a payment, an alert rule that fired.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from accounts.models import Membership, Role
from tests.factories import (
    grant_credits,
    make_alert_rule,
    make_api_key,
    make_controller,
    make_job,
    make_member,
    make_org,
    make_payment,
    make_query,
    make_worker_session,
)


@dataclass(frozen=True)
class Seeded:
    membership: Membership
    batch_id: int
    rule_id: int

    @property
    def slug(self) -> str:
        return self.membership.organization.slug

    @property
    def email(self) -> str:
        return self.membership.user.email


def seed_console() -> Seeded:
    """An owner of "Acme Research", with usage, payments, a charged batch and an alert."""
    from alerts.models import AlertNotification
    from ingest.services.ingest import usage_records_ingest
    from usage.models import IngestBatch

    now = timezone.now()
    member = make_member(org=make_org(name="Acme Research", tier="developer"), role=Role.OWNER)
    org = member.organization
    make_member(org=make_org(name="Acme Sandbox"), user=member.user, role=Role.ADMIN)
    grant_credits(org=org, amount="1000")
    make_payment(org=org, amount_minor=2500)
    key, _ = make_api_key(org=org, name="Lab workstation")
    controller, _ = make_controller(org=org, name="dgx-01")
    controller.last_heartbeat_at = now
    controller.save(update_fields=["last_heartbeat_at"])
    for hours, status, on_controller in [
        (1, "running", True),
        (2, "completed", False),
        (50, "failed", True),
        (100, "completed", False),
        (300, "cancelled", False),
    ]:
        make_job(
            org=org,
            submitted_at=now - timedelta(hours=hours),
            status=status,
            api_key=key if hours < 200 else None,
            controller=controller if on_controller else None,
            cores=8,
            core_hours=hours % 7 + 1.5,
            credits="0.25",
        )
    for hours, model in [(1, "llama-3.1-8b"), (30, "llama-3.1-70b"), (200, "e5-large-v2")]:
        make_query(
            org=org,
            occurred_at=now - timedelta(hours=hours),
            model=model,
            input_tokens=1200,
            output_tokens=3400,
            endpoint="/v1/chat/completions/with/a/long/path/that/must/not/widen/the/page",
            member="ana.long-name-for-wrapping@acme-research.example",
        )
    start = now - timedelta(hours=3)
    make_worker_session(org=org, started_at=start, ended_at=start + timedelta(hours=2.5))
    # A batch of embeddings costs a fraction of a cent: the ledger's smallest amounts.
    usage_records_ingest(
        org=org,
        api_key=key,
        records=[
            {
                "id": f"e2e-q-{i}",
                "kind": "query",
                "occurred_at": (now - timedelta(minutes=10 + i)).isoformat(),
                "model": "e5-large-v2",
                "input_tokens": 300 + i,
                "output_tokens": 0,
                "endpoint": "/v1/embeddings",
            }
            for i in range(3)
        ],
    )
    batch = IngestBatch.objects.filter(organization=org).latest("pk")
    rule = make_alert_rule(org=org, kind="tokens", threshold="80")
    AlertNotification.objects.create(
        organization=org,
        rule=rule,
        kind=rule.kind,
        message="Tokens this month passed 80% of the allocation.",
        fired_at=now - timedelta(hours=2),
        figures={"threshold": "80%"},
    )
    return Seeded(membership=member, batch_id=batch.pk, rule_id=rule.pk)
