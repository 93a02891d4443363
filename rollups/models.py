"""Rollups and aggregates: an organization's usage summed per day, finished hour and
bucket, and the state saying which of them are current. Derived data: every row can be
rebuilt from the records in usage/models.py. Tables keep their `usage_` names (they were
created by the usage app; see docs/architecture.md)."""

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import APIKey, Organization, Project
from billing.models import PriceModel, credit_field
from rollups.metrics import (
    JOB_FIGURES,
    MATCHING_FIGURES,
    QUERY_FIGURES,
    WORKER_FIGURES,
    Figure,
)
from usage.models import Controller, MatchingTask, core_hours_field


def _figure_field(figure: Figure, *, signed: bool) -> models.Field:
    """A figure's column (rollups/metrics.py): rollup rows count up from zero, bucket
    rows are signed (a job's status move subtracts its old figures as a delta)."""
    match figure.type:
        case "count":
            return (
                models.IntegerField(default=0) if signed else models.PositiveIntegerField(default=0)
            )
        case "big_count":
            return (
                models.BigIntegerField(default=0)
                if signed
                else models.PositiveBigIntegerField(default=0)
            )
        case "credits":
            return credit_field(default=Decimal("0"))
        case "core_hours":
            return core_hours_field(default=Decimal("0"))
        case "seconds":
            return models.DecimalField(max_digits=18, decimal_places=3, default=0)
        case "duration":
            return models.DurationField()
        case "time":
            return models.DateTimeField()
    raise ValueError(f"unknown figure type {figure.type!r}")


def _figures(name: str, figures: tuple[Figure, ...], *, signed: bool) -> type[models.Model]:
    """An abstract model holding a kind's figure fields, for its rollup or bucket table."""
    fields = {f.name: _figure_field(f, signed=signed) for f in figures}
    meta = type("Meta", (), {"abstract": True})
    return type(name, (models.Model,), {"__module__": __name__, "Meta": meta, **fields})


# --- Daily rollups ----------------------------------------------------------------------
#
# One table per record kind (the "kind" dimension), one row per organization, local day
# and combination of the kind's other dimensions (model, API key, controller, member,
# endpoint, task); hour rows (`hour` set) hold one finished hour of a day the same way.
# Rows are written only by rollups/services/, a whole org-day or org-hour at a time
# (delete and insert in one transaction), and read by the panel selectors for the days
# RollupState and the hours RollupHour call clean. See rollups/services/.


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
        db_table = "usage_rollupstate"
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
    the organization's zone. Kept for the last HOUR_DAYS days (rollups/services/):
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
        db_table = "usage_rolluphour"
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
    # The records' project (docs/projects.md): one of every row's dimensions, so a
    # project's figures read as few rows as the organization's.
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+", db_index=False)

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


class JobDaily(DailyRollup, _figures("JobDailyFigures", JOB_FIGURES, signed=False)):
    """Jobs submitted on the day, per API key and controller (none: managed compute).

    Statuses are as of the computation; a job's later move marks its day dirty.
    """

    controller = models.ForeignKey(
        Controller, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        db_table = "usage_jobdaily"
        ordering = ["-day"]
        verbose_name_plural = "job dailies"
        constraints = [
            models.UniqueConstraint(
                "organization",
                "day",
                _hour(),
                "project",
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


class QueryDaily(DailyRollup, _figures("QueryDailyFigures", QUERY_FIGURES, signed=False)):
    """Queries on the day, per dimension: "detail" rows per (model, API key, endpoint,
    member), and rows per model, per endpoint and per member summed from them, so a
    figure by one dimension reads a few rows a day whatever the others' cardinality."""

    dimension = models.CharField(max_length=10, choices=QueryDimension.choices)
    model = models.ForeignKey(
        PriceModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    endpoint = models.CharField(max_length=200, blank=True, default="")
    member = models.CharField(max_length=254, blank=True, default="")

    class Meta:
        db_table = "usage_querydaily"
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
                "project",
                *_coalesced("model", "api_key"),
                name="query_daily_dimensions",
            )
        ]
        indexes = _day_and_hour_indexes("query_rollup", "organization", "dimension", "day")


class WorkerDaily(DailyRollup, _figures("WorkerDailyFigures", WORKER_FIGURES, signed=False)):
    """Worker sessions per model and API key: runtime clipped to the day, sessions that
    started on it and sessions already running at its first instant (carried in)."""

    model = models.ForeignKey(PriceModel, on_delete=models.PROTECT, related_name="+")

    class Meta:
        db_table = "usage_workerdaily"
        ordering = ["-day"]
        verbose_name_plural = "worker dailies"
        constraints = [
            models.UniqueConstraint(
                "organization",
                "day",
                _hour(),
                "model",
                "project",
                *_coalesced("api_key"),
                name="worker_daily_dims",
            )
        ]
        indexes = _day_and_hour_indexes("worker_rollup", "organization", "day")


class MatchingDaily(DailyRollup, _figures("MatchingDailyFigures", MATCHING_FIGURES, signed=False)):
    """Matching runs started on the day per task and API key."""

    task = models.CharField(max_length=3, choices=MatchingTask.choices)

    class Meta:
        db_table = "usage_matchingdaily"
        ordering = ["-day"]
        verbose_name_plural = "matching dailies"
        constraints = [
            models.UniqueConstraint(
                "organization",
                "day",
                _hour(),
                "task",
                "project",
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
        db_table = "usage_restatement"
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
# rollups/services/aggregates.py. Counts are signed: a subtraction is a delta like any other.


class BucketAggregate(models.Model):
    # Only ingestion's upserts and their rebuilds write these rows, with ids taken from
    # the records: no foreign-key constraints (each new row cost up to four deferred
    # checks at commit), and no single-column indexes beside the dimensions' unique one
    # (it leads with the organization; nothing reads buckets by key, model or controller
    # alone, and every update that is not heap-only wrote each index).
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # The bucket's first instant.
    bucket = models.DateTimeField()
    api_key = models.ForeignKey(
        APIKey,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.bucket:%Y-%m-%d %H:%M}"


class JobBucket(BucketAggregate, _figures("JobBucketFigures", JOB_FIGURES, signed=True)):
    """Jobs submitted in the bucket per API key and controller, statuses as of now."""

    controller = models.ForeignKey(
        Controller,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        db_table = "usage_jobbucket"
        constraints = [
            models.UniqueConstraint(
                "organization",
                "bucket",
                "project",
                *_coalesced("api_key", "controller"),
                name="job_bucket_dimensions",
            )
        ]


class QueryBucket(BucketAggregate, _figures("QueryBucketFigures", QUERY_FIGURES, signed=True)):
    """Queries in the bucket per dimension, as QueryDaily."""

    dimension = models.CharField(max_length=10, choices=QueryDimension.choices)
    model = models.ForeignKey(
        PriceModel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    endpoint = models.CharField(max_length=200, blank=True, default="")
    member = models.CharField(max_length=254, blank=True, default="")

    class Meta:
        db_table = "usage_querybucket"
        constraints = [
            models.UniqueConstraint(
                "organization",
                "dimension",
                "bucket",
                "endpoint",
                "member",
                "project",
                *_coalesced("model", "api_key"),
                name="query_bucket_dimensions",
            )
        ]


class WorkerBucket(BucketAggregate, _figures("WorkerBucketFigures", WORKER_FIGURES, signed=True)):
    """Worker sessions per model and API key: runtime clipped to the bucket, sessions
    that started in it, sessions already running at its first instant (carried in)."""

    model = models.ForeignKey(
        PriceModel,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        db_table = "usage_workerbucket"
        constraints = [
            models.UniqueConstraint(
                "organization",
                "bucket",
                "model",
                "project",
                *_coalesced("api_key"),
                name="worker_bucket_dimensions",
            )
        ]


class MatchingBucket(
    BucketAggregate, _figures("MatchingBucketFigures", MATCHING_FIGURES, signed=True)
):
    """Matching runs started in the bucket per task and API key."""

    task = models.CharField(max_length=3, choices=MatchingTask.choices)

    class Meta:
        db_table = "usage_matchingbucket"
        constraints = [
            models.UniqueConstraint(
                "organization",
                "bucket",
                "task",
                "project",
                *_coalesced("api_key"),
                name="matching_bucket_dimensions",
            )
        ]
