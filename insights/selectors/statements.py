"""Monthly statements' usage breakdown: the usage records behind a statement's usage
debits, summed by kind, model, API key and project in the database. Registered with billing's
statements in UsageConfig.ready (billing sits below usage and cannot import it).

A batch's debit has the reference "usage-batch:<id>" and pays for the records stored
with that batch; a job is charged by the debit its `charge_reference` names (the batch
or the jobs endpoint that ended it). A record "occurred before" the statement's month
when its time (a query's, a session's or a run's end, a job's end) is before it.
"""

from collections.abc import Iterator
from datetime import datetime

from django.db.models import BooleanField, Case, CharField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Concat

from accounts.models import Organization
from billing.models import LedgerEntry
from billing.usage_sources import UsageBreakdownRow
from usage.models import IngestBatch, Job, MatchingRun, Query, WorkerSession

# (model, label, the field that says when it happened, whether it has a price-list model)
_BATCHED = (
    (Query, "Queries", "occurred_at", True),
    (WorkerSession, "Worker sessions", "ended_at", True),
    (MatchingRun, "Matching runs", "ended_at", False),
)


def _late(field: str, period_start: datetime) -> Case:
    return Case(
        When(Q(**{f"{field}__lt": period_start}), then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )


def usage_breakdown(
    *, org: Organization, entries: QuerySet[LedgerEntry], period_start: datetime
) -> Iterator[UsageBreakdownRow]:
    """Credits of the records these usage debits charged, by kind, model, key, project
    and lateness."""
    references = entries.values("reference")
    batches = (
        IngestBatch.objects.filter(organization=org)
        .annotate(key=Concat(Value("usage-batch:"), "id", output_field=CharField()))
        .filter(key__in=references)
        .values("id")
    )
    for model, label, when, has_model in _BATCHED:
        group = ["api_key_id", "project_id", "late"] + (["model__name"] if has_model else [])
        rows = (
            model.objects.filter(organization=org, batch__in=batches)
            .annotate(late=_late(when, period_start))
            .values(*group)
            .annotate(credits=Sum("credits"))
            .order_by()
        )
        for row in rows:
            if row["credits"]:
                yield UsageBreakdownRow(
                    kind=label,
                    model=row.get("model__name", ""),
                    api_key_id=row["api_key_id"],
                    occurred_before=row["late"],
                    credits=row["credits"],
                    project_id=row["project_id"],
                )
    jobs = (
        Job.objects.filter(organization=org, charge_reference__in=references)
        .annotate(late=_late("ended_at", period_start))
        .values("api_key_id", "project_id", "late")
        .annotate(credits=Sum("credits"))
        .order_by()
    )
    for row in jobs:
        if row["credits"]:
            yield UsageBreakdownRow(
                kind="Jobs",
                model="",
                api_key_id=row["api_key_id"],
                occurred_before=row["late"],
                credits=row["credits"],
                project_id=row["project_id"],
            )
