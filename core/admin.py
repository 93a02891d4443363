"""Admin for the platform's own rows: how the sweeps went (read-only: the sweeps write
them, operators look). The site is console.admin_site."""

from django.contrib import admin
from django.http import HttpRequest

from core.models import SweepFailure, SweepRun


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: operators look, never edit or delete."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(SweepRun)
class SweepRunAdmin(ReadOnlyAdmin):
    """The last outcome of each scheduled task (core/sweeps.py)."""

    list_display = [
        "task",
        "failures_in_a_row",
        "last_succeeded_at",
        "last_failed_at",
        "last_error",
    ]
    list_filter = ["failures_in_a_row"]


@admin.register(SweepFailure)
class SweepFailureAdmin(ReadOnlyAdmin):
    """An organization's part of a periodic sweep that raised (the others went on): the
    error, the attempt, and whether retries are over."""

    list_display = ["failed_at", "organization", "sweep", "target", "attempt", "final", "error"]
    list_filter = ["sweep", "final"]
    search_fields = ["organization__name", "organization__slug", "error"]
    list_select_related = ["organization"]
    date_hierarchy = "failed_at"
