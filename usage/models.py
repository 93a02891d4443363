"""Usage: controllers, jobs and the metered records, append-only and charged once.

Every record carries the client's id, unique per organization and kind, and the batch
that brought it in (whose ledger entry paid for it). Tables are shaped for set-based
reads: (organization, time) indexes and plain foreign keys to group by.
"""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import APIKey, Organization, Project
from billing.models import PriceModel, credit_field

CLIENT_ID_MAX = 200


def controller_online_window() -> timedelta:
    """A controller is online while its last heartbeat is younger than this."""
    return timedelta(seconds=settings.CONTROLLER_ONLINE_SECONDS)


def field_column(field: models.Field) -> str:
    """A concrete field's column (Django types it optional: some fields have none)."""
    if field.column is None:
        raise ValueError(f"{field} has no column")
    return field.column


def core_hours_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=18, decimal_places=6, **kwargs)


class Controller(models.Model):
    """A bring-your-own-compute node; authenticates its heartbeats with its own token."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="controllers"
    )
    # Set at registration (docs/projects.md): the jobs it runs without a key belong here.
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="controllers")
    name = models.CharField(max_length=100)
    cores = models.PositiveIntegerField()
    memory_gb = models.PositiveIntegerField()
    # Unique per organization, like an API key's hash (see accounts.APIKey.secret_hash).
    token_hash = models.CharField(max_length=64, editable=False)
    token_last_four = models.CharField(max_length=4, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="controller_name_per_org"
            ),
            models.UniqueConstraint(
                fields=["organization", "token_hash"], name="controller_token_per_org"
            ),
            models.CheckConstraint(condition=Q(cores__gt=0), name="controller_cores_positive"),
        ]
        # Heartbeats find a controller by its token's hash alone.
        indexes = [models.Index(fields=["token_hash"], name="controller_token_hash")]

    def __str__(self) -> str:
        return self.name

    @property
    def online(self) -> bool:
        if self.last_heartbeat_at is None:
            return False
        return timezone.now() - self.last_heartbeat_at < controller_online_window()


class IngestBatch(models.Model):
    """One accepted ingestion call: what it stored and the one ledger debit paying for it."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="ingest_batches"
    )
    api_key = models.ForeignKey(
        APIKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The sending key's project (docs/projects.md), never chosen by the client.
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField(default=timezone.now)
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    credits = credit_field(default=Decimal("0"))

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "ingest batches"
        indexes = [models.Index(fields=["organization", "received_at"], name="batch_org_time")]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.accepted} records)"

    @property
    def ledger_key(self) -> str:
        return f"usage-batch:{self.pk}"


class JobStatus(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# A tuple, not a set: the constraint below must render the same in every migration run.
TERMINAL_JOB_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
# The job lifecycle, the one table of it: the statuses each status may move to next. The
# jobs API moves a job one step at a time (running records its start); a usage record may
# report any status the job can reach from where it is (it carries its own times), so a
# submitted job can arrive completed. The ends go nowhere.
JOB_NEXT_STATUSES: dict[str, tuple[str, ...]] = {
    JobStatus.SUBMITTED: (JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED),
    JobStatus.RUNNING: (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED),
}


def job_status_reachable(current: str, wanted: str) -> bool:
    """Whether a job at `current` can get to `wanted` (in one step or more)."""
    frontier, seen = list(JOB_NEXT_STATUSES.get(current, ())), set()
    while frontier:
        status = frontier.pop()
        if status == wanted:
            return True
        if status not in seen:
            seen.add(status)
            frontier.extend(JOB_NEXT_STATUSES.get(status, ()))
    return False


class UsageRecord(models.Model):
    """Fields every metered record shares.

    Its foreign keys carry no database constraint (db_constraint=False): ingestion is
    the only writer, and it writes ids it has just read or made in the same transaction
    (the organization it locks, the key that authenticated, the batch it created, the
    project of that key, price models and controllers it looked up). The deferred checks
    cost more at commit than anything else per record; docs/data-lifecycle.md ("Foreign
    keys of the records") says what still guards the references.
    """

    # No index of its own: every kind's (organization, client_id) unique key and
    # (organization, time) index start with it. A lone organization_id index tempted the
    # planner into scanning an organization's rows for a replay lookup before ANALYZE.
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    client_id = models.CharField(max_length=CLIENT_ID_MAX)
    # No key: unattributed (an operator tool or a legacy submission), shown on its own card.
    api_key = models.ForeignKey(
        APIKey,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )
    batch = models.ForeignKey(
        IngestBatch,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )
    # The project of the key that sent it, else of its controller, else the Default
    # (docs/projects.md). No index of its own: pages read project figures from the
    # aggregates and rollups, never by scanning records for a project.
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    credits = credit_field(default=Decimal("0"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True


class Job(UsageRecord):
    """A job on managed compute (no controller) or on a controller; charged when it ends."""

    status = models.CharField(max_length=20, choices=JobStatus.choices)
    cores = models.PositiveIntegerField()
    controller = models.ForeignKey(
        Controller,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jobs",
        db_constraint=False,
    )
    submitted_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Billed core-hours: reported by the client, else cores × wall-clock hours at the end.
    core_hours = core_hours_field(default=Decimal("0"))
    # The ledger entry that charged the job ("usage-batch:12" or "job:34"); empty until then.
    charge_reference = models.CharField(max_length=100, blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "client_id"], name="job_id_per_org"),
            models.CheckConstraint(condition=Q(cores__gt=0), name="job_cores_positive"),
            models.CheckConstraint(
                condition=Q(core_hours__gte=0) & Q(credits__gte=0), name="job_amounts_not_neg"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(status__in=TERMINAL_JOB_STATUSES),
                name="job_end_only_when_terminal",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "submitted_at"], name="job_org_time"),
            models.Index(fields=["organization", "status"], name="job_org_status"),
        ]

    def __str__(self) -> str:
        return f"job {self.client_id} ({self.status})"

    @property
    def is_managed(self) -> bool:
        return self.controller_id is None


class WorkerSession(UsageRecord):
    """A model's worker running from start to end: runtime per model."""

    model = models.ForeignKey(
        PriceModel, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    runtime_seconds = models.DecimalField(max_digits=14, decimal_places=3)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "client_id"], name="worker_session_id_per_org"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__gte=models.F("started_at")), name="worker_session_ordered"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "started_at"], name="worker_org_time"),
            # Sessions still running at a day's start (the rollup's carried-in figure and
            # the open day's edge) are found by when they end.
            models.Index(fields=["organization", "ended_at"], name="worker_org_end"),
        ]

    def __str__(self) -> str:
        return f"worker session {self.client_id}"


class Query(UsageRecord):
    """An end-user query to a model: prompt (input) and completion (output) tokens."""

    model = models.ForeignKey(
        PriceModel, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    occurred_at = models.DateTimeField()
    input_tokens = models.PositiveBigIntegerField()
    output_tokens = models.PositiveBigIntegerField()
    total_tokens = models.PositiveBigIntegerField()
    endpoint = models.CharField(max_length=200, blank=True, default="")
    # The team member (or end user) the query was made for, as the client reported it.
    member = models.CharField(max_length=254, blank=True, default="")

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name_plural = "queries"
        constraints = [
            models.UniqueConstraint(fields=["organization", "client_id"], name="query_id_per_org"),
            models.CheckConstraint(
                condition=Q(total_tokens=models.F("input_tokens") + models.F("output_tokens")),
                name="query_total_tokens",
            ),
        ]
        indexes = [models.Index(fields=["organization", "occurred_at"], name="query_org_time")]

    def __str__(self) -> str:
        return f"query {self.client_id}"


class MatchingTask(models.TextChoices):
    IDR = "IDR", "Identity resolution (IDR)"
    CDM = "CDM", "Customer data matching (CDM)"


class MatchingRun(UsageRecord):
    """A record-matching run: task, records matched, run time (not priced yet)."""

    task = models.CharField(max_length=3, choices=MatchingTask.choices)
    num_records = models.PositiveBigIntegerField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    run_time_seconds = models.DecimalField(max_digits=14, decimal_places=3)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "client_id"], name="matching_run_id_per_org"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__gte=models.F("started_at")), name="matching_run_ordered"
            ),
        ]
        indexes = [models.Index(fields=["organization", "started_at"], name="matching_org_time")]

    def __str__(self) -> str:
        return f"matching run {self.client_id}"


# --- Partitioned history -----------------------------------------------------------------
#
# On PostgreSQL the four record tables are partitioned by month of their time column
# (migration 0009, usage/services/partitions.py). A unique key of a partitioned table
# must hold the partition column, so (organization, client_id) can no longer be unique
# there by itself: RecordKey holds it instead. Each kind's time column, the partition key:
PARTITION_COLUMNS = {
    "usage_job": "submitted_at",
    "usage_query": "occurred_at",
    "usage_workersession": "started_at",
    "usage_matchingrun": "started_at",
}


class RecordKind(models.TextChoices):
    QUERY = "q", "Query"
    WORKER_SESSION = "w", "Worker session"
    MATCHING = "m", "Matching run"
    JOB = "j", "Job"


class RecordKey(models.Model):
    """Every record's (organization, kind, client id) ever stored: the idempotency key.

    Written by a statement trigger on each partitioned record table in the inserting
    statement's transaction (PostgreSQL only; SQLite keeps the records' own unique
    constraints and leaves this table empty). Kept when retention drops a month's
    records, so a replay of a dropped record is still a duplicate. `at` is the record's
    partition key value: it finds the record's partition without probing every one.
    """

    pk = models.CompositePrimaryKey("organization", "kind", "client_id")
    # Written by the trigger from the record's own organization: no constraint either.
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(max_length=1, choices=RecordKind.choices)
    client_id = models.CharField(max_length=CLIENT_ID_MAX)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.kind}:{self.client_id}"


class RetainedMonth(models.Model):
    """A calendar month (UTC) whose raw records retention dropped; its days are read from
    the rollups only, and per-record detail for it is no longer kept."""

    month = models.DateField(primary_key=True)
    dropped_at = models.DateTimeField(default=timezone.now)
    # Records per kind the dropped partitions held, e.g. {"usage_query": 3000000}.
    records = models.JSONField(default=dict)

    class Meta:
        ordering = ["-month"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} (raw records dropped)"
