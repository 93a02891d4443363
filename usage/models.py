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
    return timedelta(seconds=settings.CONTROLLER_ONLINE_SECONDS)


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
    """Fields every metered record shares."""

    # No index of its own: every kind's (organization, client_id) unique key and
    # (organization, time) index start with it. A lone organization_id index tempted the
    # planner into scanning an organization's rows for a replay lookup before ANALYZE.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
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
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
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
            models.UniqueConstraint(
                fields=["organization", "api_key", "minute"], name="refusal_per_key_minute"
            ),
        ]
        indexes = [models.Index(fields=["organization", "minute"], name="refusal_org_time")]

    def __str__(self) -> str:
        return f"{self.count} refused at {self.minute:%Y-%m-%d %H:%M}"


# --- Daily rollups ----------------------------------------------------------------------
#
# One table per record kind (the "kind" dimension), one row per organization, local day
# and combination of the kind's other dimensions (model, API key, controller, member,
# endpoint, task); hour rows (`hour` set) hold one finished hour of a day the same way.
# Rows are written only by usage/services/rollup/, a whole org-day or org-hour at a time
# (delete and insert in one transaction), and read by the panel selectors for the days
# RollupState and the hours RollupHour call clean. See usage/services/rollup/.


class RollupState(models.Model):
    """Where an organization's day stands: rolled up (in which time zone), or due again.

    `dirty` is set by ingestion when records (or a job's status move) land on a closed
    day, and cleared by the rollup that recomputes the day; selectors read a day from
    the rollup tables only while it is clean and computed in the organization's zone.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    time_zone = models.CharField(max_length=64, blank=True, default="")
    dirty = models.BooleanField(default=True)
    dirtied_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    # Rows the last computation wrote (all kinds) and how long it took.
    rows = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "day"], name="rollup_state_per_day"),
        ]
        indexes = [
            models.Index(
                fields=["dirty", "organization", "day"],
                name="rollup_state_dirty",
                condition=Q(dirty=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} ({'dirty' if self.dirty else 'clean'})"

    @property
    def clean(self) -> bool:
        return not self.dirty and self.computed_at is not None


class RollupHour(models.Model):
    """Where one finished hour of an organization's day stands (like RollupState for a
    day): the hour's rows in the rollup tables are read while it is clean and computed in
    the organization's zone. Kept for the last HOUR_DAYS days (usage/services/rollup/):
    the open day's finished hours, and the hours at the edges of sliding windows."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    hour = models.PositiveSmallIntegerField()
    time_zone = models.CharField(max_length=64, blank=True, default="")
    dirty = models.BooleanField(default=True)
    dirtied_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    rows = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "-hour"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "hour"], name="rollup_hour_per_hour"
            ),
        ]
        indexes = [
            models.Index(
                fields=["dirty", "organization", "day"],
                name="rollup_hour_dirty",
                condition=Q(dirty=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} +{self.hour}h ({'dirty' if self.dirty else 'clean'})"


class DailyRollup(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    # None: the row covers the whole day. Else the row covers one finished hour of the
    # day, counted from the day's first instant (0-24: a 25-hour day has an hour 24; the
    # last hour of a day is cut at the day's end). See RollupHour.
    hour = models.PositiveSmallIntegerField(null=True, blank=True)
    api_key = models.ForeignKey(
        APIKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.day}"


def _coalesced(*names: str):
    """A null foreign key as 0, so a unique constraint treats "no key" as one value."""
    from django.db.models.functions import Coalesce

    return [Coalesce(name, models.Value(0)) for name in names]


def _hour():
    """The row's hour, a whole-day row's as -1 (so hour rows and day rows never clash)."""
    from django.db.models.functions import Coalesce

    return Coalesce("hour", models.Value(-1))


def _day_and_hour_indexes(name: str, *fields: str) -> list[models.Index]:
    """Day rows and hour rows indexed apart: reading a month of day rows never walks the
    (24 times more) hour rows of those days."""
    return [
        models.Index(fields=list(fields), name=f"{name}_day", condition=Q(hour__isnull=True)),
        models.Index(
            fields=[*fields, "hour"], name=f"{name}_hour", condition=Q(hour__isnull=False)
        ),
    ]


class JobDaily(DailyRollup):
    """Jobs submitted on the day, per API key and controller (none: managed compute).

    Statuses are as of the computation; a job's later move marks its day dirty.
    """

    controller = models.ForeignKey(
        Controller, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submitted = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    running = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    core_hours = core_hours_field(default=Decimal("0"))
    credits = credit_field(default=Decimal("0"))
    wasted_core_hours = core_hours_field(default=Decimal("0"))
    wasted_credits = credit_field(default=Decimal("0"))
    last_submitted_at = models.DateTimeField()

    class Meta:
        ordering = ["-day"]
        verbose_name_plural = "job dailies"
        constraints = [
            models.UniqueConstraint(
                "organization",
                "day",
                _hour(),
                *_coalesced("api_key", "controller"),
                name="job_daily_dimensions",
            )
        ]
        indexes = _day_and_hour_indexes("job_rollup", "organization", "day")


class QueryDimension(models.TextChoices):
    DETAIL = "detail", "Model × API key × endpoint × member"
    MODEL = "model", "Model"
    ENDPOINT = "endpoint", "Endpoint"
    MEMBER = "member", "Member"


class QueryDaily(DailyRollup):
    """Queries on the day, per dimension: "detail" rows per (model, API key, endpoint,
    member), and rows per model, per endpoint and per member summed from them, so a
    figure by one dimension reads a few rows a day whatever the others' cardinality."""

    dimension = models.CharField(max_length=10, choices=QueryDimension.choices)
    model = models.ForeignKey(
        PriceModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    endpoint = models.CharField(max_length=200, blank=True, default="")
    member = models.CharField(max_length=254, blank=True, default="")
    queries = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    total_tokens = models.PositiveBigIntegerField(default=0)
    credits = credit_field(default=Decimal("0"))

    class Meta:
        ordering = ["-day"]
        verbose_name_plural = "query dailies"
        constraints = [
            models.UniqueConstraint(
                "organization",
                "day",
                "dimension",
                "endpoint",
                "member",
                _hour(),
                *_coalesced("model", "api_key"),
                name="query_daily_dimensions",
            )
        ]
        indexes = _day_and_hour_indexes("query_rollup", "organization", "dimension", "day")


class WorkerDaily(DailyRollup):
    """Worker sessions per model and API key: runtime clipped to the day, sessions that
    started on it and sessions already running at its first instant (carried in)."""

    model = models.ForeignKey(PriceModel, on_delete=models.PROTECT, related_name="+")
    sessions_started = models.PositiveIntegerField(default=0)
    sessions_carried_in = models.PositiveIntegerField(default=0)
    runtime = models.DurationField()
    # Credits of the sessions that started on the day (each session is charged once).
    credits = credit_field(default=Decimal("0"))

    class Meta:
        ordering = ["-day"]
        verbose_name_plural = "worker dailies"
        constraints = [
            models.UniqueConstraint(
                "organization",
                "day",
                _hour(),
                "model",
                *_coalesced("api_key"),
                name="worker_daily_dims",
            )
        ]
        indexes = _day_and_hour_indexes("worker_rollup", "organization", "day")


class MatchingDaily(DailyRollup):
    """Matching runs started on the day per task and API key."""

    task = models.CharField(max_length=3, choices=MatchingTask.choices)
    runs = models.PositiveIntegerField(default=0)
    num_records = models.PositiveBigIntegerField(default=0)
    run_time_seconds = models.DecimalField(max_digits=18, decimal_places=3, default=0)

    class Meta:
        ordering = ["-day"]
        verbose_name_plural = "matching dailies"
        constraints = [
            models.UniqueConstraint(
                "organization",
                "day",
                _hour(),
                "task",
                *_coalesced("api_key"),
                name="matching_daily_dims",
            )
        ]
        indexes = _day_and_hour_indexes("matching_rollup", "organization", "day")


class Restatement(models.Model):
    """A closed day's figures changed by a recomputation (late records, a job's status
    move): one row per changed dimension, with the figures before and after."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    kind = models.CharField(max_length=20)
    # The dimension's values, e.g. {"api_key": 3, "controller": null}.
    dimension = models.JSONField()
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    restated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-restated_at", "-id"]
        indexes = [models.Index(fields=["organization", "day"], name="restatement_org_day")]

    def __str__(self) -> str:
        return f"{self.kind} {self.day} restated"


# --- Bucket aggregates ------------------------------------------------------------------
#
# The rollup tables' figures per organization, bucket (USAGE_BUCKET_SECONDS wide, aligned
# to the Unix epoch) and the same dimensions, kept current by ingestion in its own
# transaction (one upsert adding per table per batch; a job's status move subtracts its
# old figures and adds its new ones) for the last HOUR_DAYS days. Readers take every
# interval the day and hour rows do not cover from here instead of the raw records. See
# usage/services/aggregates.py. Counts are signed: a subtraction is a delta like any other.


class BucketAggregate(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    # The bucket's first instant.
    bucket = models.DateTimeField()
    api_key = models.ForeignKey(
        APIKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.bucket:%Y-%m-%d %H:%M}"


class JobBucket(BucketAggregate):
    """Jobs submitted in the bucket per API key and controller, statuses as of now."""

    controller = models.ForeignKey(
        Controller, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submitted = models.IntegerField(default=0)
    completed = models.IntegerField(default=0)
    running = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    cancelled = models.IntegerField(default=0)
    core_hours = core_hours_field(default=Decimal("0"))
    credits = credit_field(default=Decimal("0"))
    wasted_core_hours = core_hours_field(default=Decimal("0"))
    wasted_credits = credit_field(default=Decimal("0"))
    last_submitted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "bucket",
                *_coalesced("api_key", "controller"),
                name="job_bucket_dimensions",
            )
        ]


class QueryBucket(BucketAggregate):
    """Queries in the bucket per dimension, as QueryDaily."""

    dimension = models.CharField(max_length=10, choices=QueryDimension.choices)
    model = models.ForeignKey(
        PriceModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    endpoint = models.CharField(max_length=200, blank=True, default="")
    member = models.CharField(max_length=254, blank=True, default="")
    queries = models.IntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    credits = credit_field(default=Decimal("0"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "dimension",
                "bucket",
                "endpoint",
                "member",
                *_coalesced("model", "api_key"),
                name="query_bucket_dimensions",
            )
        ]


class WorkerBucket(BucketAggregate):
    """Worker sessions per model and API key: runtime clipped to the bucket, sessions
    that started in it, sessions already running at its first instant (carried in)."""

    model = models.ForeignKey(PriceModel, on_delete=models.PROTECT, related_name="+")
    sessions_started = models.IntegerField(default=0)
    sessions_carried_in = models.IntegerField(default=0)
    runtime = models.DurationField()
    credits = credit_field(default=Decimal("0"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "bucket",
                "model",
                *_coalesced("api_key"),
                name="worker_bucket_dimensions",
            )
        ]


class MatchingBucket(BucketAggregate):
    """Matching runs started in the bucket per task and API key."""

    task = models.CharField(max_length=3, choices=MatchingTask.choices)
    runs = models.IntegerField(default=0)
    num_records = models.BigIntegerField(default=0)
    run_time_seconds = models.DecimalField(max_digits=18, decimal_places=3, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                "bucket",
                "task",
                *_coalesced("api_key"),
                name="matching_bucket_dimensions",
            )
        ]


# --- Spend controls: budgets, reservations, pauses -------------------------


class BudgetScope(models.TextChoices):
    ORGANIZATION = "organization", "Organization"
    API_KEY = "api_key", "API key"
    MEMBER = "member", "Member"


class BudgetPeriod(models.TextChoices):
    DAY = "day", "Day"
    WEEK = "week", "Week"
    MONTH = "month", "Calendar month"


def budget_thresholds_default() -> list[int]:
    return [50, 80, 100]


class Budget(models.Model):
    """A credit budget for a day, week or calendar month (organization's zone): the soft
    level alerts, the optional hard level refuses authorizations."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=20, choices=BudgetScope.choices)
    api_key = models.ForeignKey(
        APIKey, null=True, blank=True, on_delete=models.CASCADE, related_name="budgets"
    )
    member = models.CharField(max_length=254, blank=True, default="")
    period = models.CharField(max_length=10, choices=BudgetPeriod.choices)
    soft_limit = credit_field()
    hard_limit = credit_field(null=True, blank=True)
    # Percentages of the soft level that alert once per crossing (alert rules).
    thresholds = models.JSONField(default=budget_thresholds_default)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["scope", "member", "api_key_id", "period", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(soft_limit__gte=0), name="budget_soft_nonneg"),
            models.CheckConstraint(
                condition=Q(hard_limit__isnull=True) | Q(hard_limit__gte=0),
                name="budget_hard_nonneg",
            ),
            models.CheckConstraint(
                condition=(
                    Q(scope="organization", api_key__isnull=True, member="")
                    | Q(scope="api_key", api_key__isnull=False, member="")
                    | (Q(scope="member", api_key__isnull=True) & ~Q(member=""))
                ),
                name="budget_scope_subject",
            ),
            models.UniqueConstraint(
                "organization",
                "scope",
                "member",
                "period",
                models.functions.Coalesce("api_key", 0),
                name="budget_one_per_subject_period",
            ),
        ]

    def __str__(self) -> str:
        subject = "" if self.scope == BudgetScope.ORGANIZATION else f" {self.subject_label}"
        return f"{self.get_scope_display()}{subject}, {self.get_period_display().lower()}"

    @property
    def subject_label(self) -> str:
        if self.scope == BudgetScope.API_KEY:
            return self.api_key.name if self.api_key else ""
        return self.member or "organization"

    @property
    def subject(self) -> str:
        """The spend counters' subject: '' (organization), the key's id, or the member."""
        if self.scope == BudgetScope.API_KEY:
            return str(self.api_key_id)
        return self.member


class SpendDay(models.Model):
    """Credits (and tokens) charged per organization, local day and subject: the
    organization ('o', ''), an API key ('k', id) or a member ('m', email). Written in the
    ingestion transaction; budgets sum the days of their period."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    dimension = models.CharField(max_length=1)
    subject = models.CharField(max_length=254, blank=True, default="")
    day = models.DateField()
    credits = credit_field(default=Decimal("0"))
    tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "dimension", "subject", "day"], name="spend_day_subject"
            )
        ]

    def __str__(self) -> str:
        return f"{self.dimension}:{self.subject} {self.day}"


class SpendHold(models.Model):
    """What live reservations hold per subject (credits and tokens). The organization's
    own row ('o', '') is also the lock that serializes authorizations and settlements."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    dimension = models.CharField(max_length=1)
    subject = models.CharField(max_length=254, blank=True, default="")
    credits = credit_field(default=Decimal("0"))
    tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "dimension", "subject"], name="spend_hold_subject"
            ),
            models.CheckConstraint(condition=Q(credits__gte=0), name="spend_hold_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.dimension}:{self.subject}"


class ReservationStatus(models.TextChoices):
    HELD = "held", "Held"
    SETTLED = "settled", "Settled"
    EXPIRED = "expired", "Expired"


class Reservation(models.Model):
    """A worst-case cost held by `authorize` until a usage record settles it or it expires."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    public_id = models.CharField(max_length=40)
    api_key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="+")
    member = models.CharField(max_length=254, blank=True, default="")
    endpoint = models.CharField(max_length=200, blank=True, default="")
    model = models.ForeignKey(PriceModel, on_delete=models.PROTECT, related_name="+")
    credits = credit_field()
    tokens = models.BigIntegerField()
    status = models.CharField(
        max_length=10, choices=ReservationStatus.choices, default=ReservationStatus.HELD
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    settled_credits = credit_field(null=True, blank=True)
    record_id = models.CharField(max_length=CLIENT_ID_MAX, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(
                fields=["organization", "expires_at"],
                condition=Q(status="held"),
                name="reservation_held_expiry",
            )
        ]
        constraints = [
            # The id the gateway carries on the usage record, unique in its organization.
            models.UniqueConstraint(
                fields=["organization", "public_id"], name="reservation_public_id_unique"
            ),
            models.CheckConstraint(condition=Q(credits__gte=0), name="reservation_nonneg"),
        ]

    def __str__(self) -> str:
        return self.public_id


class KeyPause(models.Model):
    """A paused API key: `authorize` answers 402 key_paused; nothing else changes."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="+")
    paused_at = models.DateTimeField(default=timezone.now)
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            # A key is paused once; the organization leads the key (shardable by it).
            models.UniqueConstraint(fields=["organization", "api_key"], name="key_pause_once"),
        ]

    def __str__(self) -> str:
        return f"pause of key {self.api_key_id}"


class OverCap(models.Model):
    """Usage stored past a hard budget or the free allocation without a reservation (or
    past its reservation): shown on key and budget cards, counted by reconciliation."""

    class Reason(models.TextChoices):
        BUDGET = "budget", "Over a hard budget"
        ALLOCATION = "allocation", "Past the free allocation"
        RESERVATION = "reservation", "Past its reservation"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=12, choices=Reason.choices)
    budget = models.ForeignKey(Budget, null=True, blank=True, on_delete=models.SET_NULL)
    api_key = models.ForeignKey(
        APIKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    member = models.CharField(max_length=254, blank=True, default="")
    batch = models.ForeignKey("IngestBatch", null=True, on_delete=models.SET_NULL, related_name="+")
    records = models.IntegerField(default=0)
    credits = credit_field(default=Decimal("0"))  # charged beyond the level
    uncharged_credits = credit_field(default=Decimal("0"))  # not charged (free allocation)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["organization", "at"], name="overcap_org_at")]

    def __str__(self) -> str:
        return f"{self.reason} {self.at:%Y-%m-%d}"
