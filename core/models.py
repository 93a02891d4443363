"""How the periodic sweeps went: the platform's own rows (docs/architecture.md, "core").

A sweep is a scheduled (beat) task that does each organization's share of some work in
its own task (core/sweeps.py). Two grains of one record: `SweepRun` is the last outcome
of each scheduled task (admin's overview lists those whose last run failed), and
`SweepFailure` is one organization's share that raised (the others went on). Both keep
the tables they had before they moved here.
"""

from django.db import models
from django.utils import timezone


class SweepRun(models.Model):
    """The last outcome of one scheduled (beat) task, written by core.sweeps' Celery
    signal handlers: a sweep whose last run failed shows on admin's overview."""

    task = models.CharField(max_length=200, unique=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_succeeded_at = models.DateTimeField(null=True, blank=True)
    last_failed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    failures_in_a_row = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "console_sweeprun"
        ordering = ["task"]

    def __str__(self) -> str:
        return self.task

    @property
    def failing(self) -> bool:
        return self.failures_in_a_row > 0


class SweepFailure(models.Model):
    """One organization's share of a periodic sweep (rollup, hour rollup, alert evaluation,
    reconciliation, auto-recharge) that raised: logged, recorded here for operators
    (read-only in admin), retried with backoff until `final`; the other organizations'
    work went on regardless (core/sweeps.py)."""

    # Named by its label, never imported: core imports no app (the layers contract).
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="sweep_failures"
    )
    sweep = models.CharField(max_length=40)
    # What part of the organization's work failed, e.g. "2026-01-10" or "2026-01-10 +3h".
    target = models.CharField(max_length=200, blank=True, default="")
    error = models.CharField(max_length=500)
    attempt = models.PositiveSmallIntegerField(default=1)
    # No retry follows: an operator looks (the next sweep still tries again).
    final = models.BooleanField(default=False)
    failed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "billing_sweepfailure"
        ordering = ["-failed_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-failed_at"], name="sweep_failure_org_time")
        ]

    def __str__(self) -> str:
        return f"{self.sweep} {self.target}: {self.error}"
