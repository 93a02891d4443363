from django.contrib import admin

from accounts.admin_filters import ProjectListFilter
from spend.models import Budget, KeyPause, OverCap, Reservation, SpendHold
from usage.admin import ReadOnlyAdmin


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ["organization", "scope", "project", "api_key", "member", "period",
                    "soft_limit", "hard_limit"]  # fmt: skip
    list_filter = ["scope", "period", ProjectListFilter]
    list_select_related = ["organization", "project", "api_key"]
    search_fields = ["organization__name", "member", "api_key__name", "project__name"]
    raw_id_fields = ["organization", "api_key", "project"]


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "organization", "project", "api_key", "member", "credits",
                    "status", "created_at", "expires_at", "settled_credits"]  # fmt: skip
    list_filter = ["status", ProjectListFilter]
    list_select_related = ["organization", "api_key", "project"]
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
