"""Operators' view of alerts: rules, notifications and delivery attempts, read-only
(customers change them in Settings → Alerts)."""

from django.contrib import admin
from django.http import HttpRequest

from accounts.admin_filters import ProjectListFilter
from alerts.models import AlertDelivery, AlertNotification, AlertRule
from billing.admin import ReadOnlyAdmin


class AlertDeliveryInline(admin.TabularInline):
    model = AlertDelivery
    extra = 0
    can_delete = False
    fields = ["attempted_at", "channel", "attempt", "status", "response_code", "error", "target"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(AlertRule)
class AlertRuleAdmin(ReadOnlyAdmin):
    list_display = [
        "organization",
        "project",
        "kind",
        "threshold",
        "enabled",
        "notify_email",
        "webhook_url",
    ]
    list_filter = ["kind", "enabled", ProjectListFilter]
    list_select_related = ["organization", "project"]
    search_fields = ["organization__name", "organization__slug", "project__name"]


@admin.register(AlertNotification)
class AlertNotificationAdmin(ReadOnlyAdmin):
    list_display = ["fired_at", "organization", "kind", "message", "cleared_at"]
    list_filter = ["kind"]
    search_fields = ["organization__name", "organization__slug", "message"]
    list_select_related = ["organization"]
    inlines = [AlertDeliveryInline]
