"""What the operators' overview needs that no app keeps: how the scheduled sweeps went."""

from django.db import models


class SweepRun(models.Model):
    """The last outcome of one scheduled (beat) task, written by console.sweeps' Celery
    signal handlers: a sweep whose last run failed shows on admin's overview."""

    task = models.CharField(max_length=200, unique=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_succeeded_at = models.DateTimeField(null=True, blank=True)
    last_failed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    failures_in_a_row = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["task"]

    def __str__(self) -> str:
        return self.task

    @property
    def failing(self) -> bool:
        return self.failures_in_a_row > 0
