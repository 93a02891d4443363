from django.contrib import admin, messages

from usage.models import (
    Budget,
    Controller,
    IngestBatch,
    Job,
    KeyPause,
    MatchingRun,
    OverCap,
    Query,
    Reservation,
    Restatement,
    RollupHour,
    RollupState,
    SpendHold,
    WorkerSession,
)
from usage.services.controllers import controller_register, controller_token_rotate


@admin.register(Controller)
class ControllerAdmin(admin.ModelAdmin):
    """Register a controller here or in Settings; its token is shown once, in a message."""

    list_display = ["name", "organization", "cores", "memory_gb", "last_heartbeat_at", "online"]
    search_fields = ["name", "organization__name"]
    readonly_fields = ["token_last_four", "last_heartbeat_at", "created_at"]
    autocomplete_fields = ["organization"]
    actions = ["rotate_token"]

    @admin.display(boolean=True)
    def online(self, obj: Controller) -> bool:
        return obj.online

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = controller_register(
            org=obj.organization,
            name=obj.name,
            cores=obj.cores,
            memory_gb=obj.memory_gb,
            actor=request.user,
        )
        obj.pk = issued.controller.pk
        obj.token_hash, obj.token_last_four = (
            issued.controller.token_hash,
            issued.controller.token_last_four,
        )
        messages.warning(request, f"Token for {obj.name} (shown once): {issued.token}")

    @admin.action(description="Issue a new token (the old one stops working)")
    def rotate_token(self, request, queryset):
        for controller in queryset:
            token = controller_token_rotate(controller=controller, actor=request.user)
            messages.warning(request, f"New token for {controller.name} (shown once): {token}")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Usage records are append-only: operators read them, never edit them here."""

    list_select_related = ["organization", "api_key"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = [
        "client_id",
        "organization",
        "status",
        "cores",
        "controller",
        "core_hours",
        "credits",
        "submitted_at",
    ]
    list_filter = ["status"]
    search_fields = ["client_id", "organization__name"]


@admin.register(Query)
class QueryAdmin(ReadOnlyAdmin):
    list_display = [
        "client_id",
        "organization",
        "model",
        "total_tokens",
        "endpoint",
        "member",
        "credits",
        "occurred_at",
    ]
    search_fields = ["client_id", "organization__name", "member"]


@admin.register(WorkerSession)
class WorkerSessionAdmin(ReadOnlyAdmin):
    list_display = [
        "client_id",
        "organization",
        "model",
        "runtime_seconds",
        "credits",
        "started_at",
    ]
    search_fields = ["client_id", "organization__name"]


@admin.register(MatchingRun)
class MatchingRunAdmin(ReadOnlyAdmin):
    list_display = [
        "client_id",
        "organization",
        "task",
        "num_records",
        "run_time_seconds",
        "started_at",
    ]
    list_filter = ["task"]
    search_fields = ["client_id", "organization__name"]


@admin.register(IngestBatch)
class IngestBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "organization",
        "api_key",
        "received_at",
        "accepted",
        "duplicates",
        "rejected",
        "credits",
    ]


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


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ["organization", "scope", "api_key", "member", "period", "soft_limit",
                    "hard_limit"]  # fmt: skip
    list_filter = ["scope", "period"]
    search_fields = ["organization__name", "member", "api_key__name"]
    raw_id_fields = ["organization", "api_key"]


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "organization", "api_key", "member", "credits", "status",
                    "created_at", "expires_at", "settled_credits"]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["public_id", "organization__name", "member"]


@admin.register(SpendHold)
class SpendHoldAdmin(ReadOnlyAdmin):
    list_select_related = ["organization"]
    list_display = ["organization", "dimension", "subject", "credits", "tokens"]


@admin.register(OverCap)
class OverCapAdmin(ReadOnlyAdmin):
    list_display = ["organization", "reason", "budget", "api_key", "member", "credits",
                    "uncharged_credits", "at"]  # fmt: skip
    list_filter = ["reason"]


@admin.register(KeyPause)
class KeyPauseAdmin(admin.ModelAdmin):
    list_display = ["api_key", "organization", "paused_at", "paused_by"]
    raw_id_fields = ["organization", "api_key", "paused_by"]
