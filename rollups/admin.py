from django.contrib import admin

from rollups.models import Restatement, RollupHour, RollupState


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Written only by the rollup service: operators look, never edit."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Restatement)
class RestatementAdmin(_ReadOnlyAdmin):
    """Closed days whose figures a recomputation changed: before and after, per dimension."""

    list_display = ["day", "organization", "kind", "dimension", "before", "after", "restated_at"]
    list_filter = ["kind", "restated_at"]
    search_fields = ["organization__name", "organization__slug"]
    date_hierarchy = "day"
    list_select_related = ["organization"]


@admin.register(RollupState)
class RollupStateAdmin(_ReadOnlyAdmin):
    """Each organization-day's rollup: clean or dirty, zone, when and how long."""

    list_display = [
        "day",
        "organization",
        "dirty",
        "time_zone",
        "computed_at",
        "rows",
        "duration_ms",
        "dirtied_at",
    ]
    list_filter = ["dirty", "time_zone"]
    search_fields = ["organization__name", "organization__slug"]
    date_hierarchy = "day"
    list_select_related = ["organization"]


@admin.register(RollupHour)
class RollupHourAdmin(_ReadOnlyAdmin):
    """Each organization-hour's rollup (hours from the day's first instant): clean or dirty."""

    list_display = ["day", "hour", "organization", "dirty", "time_zone", "computed_at", "rows"]
    list_filter = ["dirty", "time_zone"]
    search_fields = ["organization__name", "organization__slug"]
    date_hierarchy = "day"
    list_select_related = ["organization"]


# Spend controls: budgets, reservations, holds, pauses and over-cap flags, read-only.
