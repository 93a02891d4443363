"""Record how each scheduled sweep ran (Celery signals), for admin's platform overview."""

import logging

from celery.signals import task_failure, task_success
from django.conf import settings
from django.db import DatabaseError
from django.db.models import F
from django.utils import timezone

from console.models import SweepRun

logger = logging.getLogger(__name__)


def scheduled_task_names() -> frozenset[str]:
    """The tasks the beat schedule runs (the sweeps)."""
    return frozenset(entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values())


def sweep_run_record(*, task: str, ok: bool, error: str = "") -> None:
    """Note one finished run of a scheduled task: success resets the failure count."""
    now = timezone.now()
    SweepRun.objects.get_or_create(task=task)
    if ok:
        fields = {"last_succeeded_at": now, "failures_in_a_row": 0}
    else:
        fields = {
            "last_failed_at": now,
            "last_error": error[:500],
            "failures_in_a_row": F("failures_in_a_row") + 1,
        }
    SweepRun.objects.filter(task=task).update(last_started_at=now, **fields)


def _on_success(sender=None, **_kwargs) -> None:
    _record(getattr(sender, "name", ""), ok=True)


def _on_failure(sender=None, exception=None, **_kwargs) -> None:
    _record(getattr(sender, "name", ""), ok=False, error=repr(exception))


def _record(task: str, *, ok: bool, error: str = "") -> None:
    if task not in scheduled_task_names():
        return
    try:
        sweep_run_record(task=task, ok=ok, error=error)
    except DatabaseError:
        # Bookkeeping must never turn a sweep's success into a failure.
        logger.warning("console.sweep_run.unrecorded", extra={"task": task}, exc_info=True)


def connect() -> None:
    task_success.connect(_on_success, weak=False, dispatch_uid="console.sweep_success")
    task_failure.connect(_on_failure, weak=False, dispatch_uid="console.sweep_failure")
