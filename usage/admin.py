from django.contrib import admin, messages

from accounts.admin_filters import ProjectListFilter
from usage.models import Controller, IngestBatch, Job, MatchingRun, Query, WorkerSession
from usage.services.controllers import controller_register, controller_token_rotate


@admin.register(Controller)
class ControllerAdmin(admin.ModelAdmin):
    """Register a controller here or in Settings; its token is shown once, in a message."""

    list_display = [
        "name",
        "organization",
        "project",
        "cores",
        "memory_gb",
        "last_heartbeat_at",
        "online",
    ]
    list_filter = [ProjectListFilter]
    list_select_related = ["organization", "project"]
    search_fields = ["name", "organization__name"]
    readonly_fields = ["token_last_four", "last_heartbeat_at", "created_at"]
    autocomplete_fields = ["organization"]
    actions = ["rotate_token"]

    def get_readonly_fields(self, request, obj=None):
        # A controller belongs to its project for good (its jobs take the project).
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "project"] if obj is not None else fields

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
            project=obj.project if obj.project_id else None,
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
        "project",
        "status",
        "cores",
        "controller",
        "core_hours",
        "credits",
        "submitted_at",
    ]
    list_filter = ["status", ProjectListFilter]
    list_select_related = ["organization", "api_key", "project", "controller"]
    search_fields = ["client_id", "organization__name"]


@admin.register(Query)
class QueryAdmin(ReadOnlyAdmin):
    list_display = [
        "client_id",
        "organization",
        "project",
        "model",
        "total_tokens",
        "endpoint",
        "member",
        "credits",
        "occurred_at",
    ]
    list_filter = [ProjectListFilter]
    list_select_related = ["organization", "api_key", "project", "model"]
    search_fields = ["client_id", "organization__name", "member"]


@admin.register(WorkerSession)
class WorkerSessionAdmin(ReadOnlyAdmin):
    list_display = [
        "client_id",
        "organization",
        "project",
        "model",
        "runtime_seconds",
        "credits",
        "started_at",
    ]
    list_filter = [ProjectListFilter]
    list_select_related = ["organization", "api_key", "project", "model"]
    search_fields = ["client_id", "organization__name"]


@admin.register(MatchingRun)
class MatchingRunAdmin(ReadOnlyAdmin):
    list_display = [
        "client_id",
        "organization",
        "project",
        "task",
        "num_records",
        "run_time_seconds",
        "started_at",
    ]
    list_filter = ["task", ProjectListFilter]
    list_select_related = ["organization", "api_key", "project"]
    search_fields = ["client_id", "organization__name"]


@admin.register(IngestBatch)
class IngestBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "organization",
        "project",
        "api_key",
        "received_at",
        "accepted",
        "duplicates",
        "rejected",
        "credits",
    ]
    list_filter = [ProjectListFilter]
    list_select_related = ["organization", "api_key", "project"]
