"""Admin for the console's own rows: the sweeps' last runs (the site is console.admin_site)."""

from django.contrib import admin
from django.http import HttpRequest

from console.models import SweepRun


@admin.register(SweepRun)
class SweepRunAdmin(admin.ModelAdmin):
    """Written by the sweeps themselves (console/sweeps.py): operators look, never edit."""

    list_display = [
        "task",
        "failures_in_a_row",
        "last_succeeded_at",
        "last_failed_at",
        "last_error",
    ]
    list_filter = ["failures_in_a_row"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
