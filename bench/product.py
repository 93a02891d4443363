"""Every name the benchmarks take from the product, in one place: the public services,
selectors, tasks and models they drive or check. When a product module moves, its path is
fixed here and nowhere else in bench/."""

from typing import Any

from accounts.models import APIKey, Organization, Role, Tier, User
from accounts.projects import project_create, project_default_for
from accounts.services import apikey_create, membership_set, organization_create
from billing.models import CoreHourRate, CreditAccount, EntryKind, LedgerEntry, PriceModel
from billing.services import organization_grant_starting_credits
from ingest.services.ingest import usage_records_ingest
from insights.selectors.panel import jobs_overview, queries_by_model, usage_by_member
from insights.selectors.summaries import worker_runtime_by_model
from rollups import models as rollups_models
from rollups.services.days import rollup_day
from rollups.services.hours import rollup_hour, rollup_hours_due
from rollups.tasks import rollup_hours_org_run, rollup_hours_sweep, rollup_org_run, rollup_sweep
from spend.models import Budget, Reservation, SpendHold
from spend.services.counter_keys import counters_drop, counters_enabled
from spend.services.spend_counters import counters_org_hold
from usage import models as usage_models
from usage.models import Controller, IngestBatch, RecordKey
from usage.services.controllers import controller_register
from usage.services.retention import usage_retention_run

# The four record kinds by their wire name, and the daily rollups built from them.
RECORD_MODELS: dict[str, Any] = {
    "query": usage_models.Query,
    "job": usage_models.Job,
    "worker_session": usage_models.WorkerSession,
    "matching": usage_models.MatchingRun,
}
DAILY_MODELS: tuple[Any, ...] = (
    rollups_models.QueryDaily,
    rollups_models.JobDaily,
    rollups_models.WorkerDaily,
    rollups_models.MatchingDaily,
)

__all__ = [
    "APIKey",
    "Controller",
    "DAILY_MODELS",
    "RECORD_MODELS",
    "Budget",
    "CoreHourRate",
    "CreditAccount",
    "EntryKind",
    "IngestBatch",
    "LedgerEntry",
    "Organization",
    "PriceModel",
    "RecordKey",
    "Reservation",
    "Role",
    "SpendHold",
    "Tier",
    "User",
    "apikey_create",
    "controller_register",
    "counters_drop",
    "counters_enabled",
    "counters_org_hold",
    "project_create",
    "project_default_for",
    "jobs_overview",
    "membership_set",
    "organization_create",
    "organization_grant_starting_credits",
    "queries_by_model",
    "rollup_day",
    "rollup_hour",
    "rollup_hours_due",
    "rollup_hours_org_run",
    "rollup_hours_sweep",
    "rollup_org_run",
    "rollup_sweep",
    "usage_by_member",
    "usage_records_ingest",
    "usage_retention_run",
    "worker_runtime_by_model",
]
