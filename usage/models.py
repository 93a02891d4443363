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

from accounts.models import APIKey, Organization
from billing.models import PriceModel, credit_field

CLIENT_ID_MAX = 200


def controller_online_window() -> timedelta:
    """A controller is online while its last heartbeat is younger than this."""
    return timedelta(seconds=getattr(settings, "CONTROLLER_ONLINE_SECONDS", 300))


def core_hours_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=18, decimal_places=6, **kwargs)


class Controller(models.Model):
    """A bring-your-own-compute node; authenticates its heartbeats with its own token."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="controllers"
    )
    name = models.CharField(max_length=100)
    cores = models.PositiveIntegerField()
    memory_gb = models.PositiveIntegerField()
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_last_four = models.CharField(max_length=4, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="controller_name_per_org"
            ),
            models.CheckConstraint(condition=Q(cores__gt=0), name="controller_cores_positive"),
        ]

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
# Position along the lifecycle; a job only ever moves to a higher one.
JOB_STATUS_STEP = {
    JobStatus.SUBMITTED: 0,
    JobStatus.RUNNING: 1,
    JobStatus.COMPLETED: 2,
    JobStatus.FAILED: 2,
    JobStatus.CANCELLED: 2,
}


class UsageRecord(models.Model):
    """Fields every metered record shares."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    client_id = models.CharField(max_length=CLIENT_ID_MAX)
    # No key: unattributed (an operator tool or a legacy submission), shown on its own card.
    api_key = models.ForeignKey(
        APIKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    batch = models.ForeignKey(
        IngestBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
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
        Controller, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
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

    model = models.ForeignKey(PriceModel, on_delete=models.PROTECT, related_name="+")
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
        indexes = [models.Index(fields=["organization", "started_at"], name="worker_org_time")]

    def __str__(self) -> str:
        return f"worker session {self.client_id}"


class Query(UsageRecord):
    """An end-user query to a model: prompt (input) and completion (output) tokens."""

    model = models.ForeignKey(PriceModel, on_delete=models.PROTECT, related_name="+")
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


class RateLimitRefusal(models.Model):
    """Requests refused with 429, counted per API key and minute: the panel's "refused"
    figure and the rate-limit alert read these, since the limiter's own counters expire."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-minute"]
        constraints = [
            models.UniqueConstraint(fields=["api_key", "minute"], name="refusal_per_key_minute"),
        ]
        indexes = [models.Index(fields=["organization", "minute"], name="refusal_org_time")]

    def __str__(self) -> str:
        return f"{self.count} refused at {self.minute:%Y-%m-%d %H:%M}"
