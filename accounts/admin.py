from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.admin_filters import ProjectListFilter
from accounts.models import (
    APIKey,
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    Project,
    ProjectMembership,
    SessionToken,
    SSOProvider,
    User,
)
from accounts.projects import ProjectError, project_archive, project_default_for
from accounts.services import apikey_revoke, session_token_revoke
from accounts.signin import user_sessions_end


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    actions = ["end_sessions"]

    @admin.action(description="Sign out everywhere (end all console sessions)")
    def end_sessions(self, request, queryset):
        ended = sum(user_sessions_end(user=user) for user in queryset)
        self.message_user(request, f"Ended {ended} session{'s' if ended != 1 else ''}.")

    # Who may grant access: only a superuser, so change-user permission is not a way to
    # make oneself (or an accomplice) superuser, staff or a member of a powerful group.
    _GRANTING = ("is_staff", "is_superuser", "groups", "user_permissions")

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        return fields + self._GRANTING


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "tier", "time_zone", "created_at"]
    list_filter = ["tier"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}
    # Owners switch the two-factor requirement in Settings → Security, where it is audited.
    readonly_fields = ["require_two_factor"]
    inlines = [MembershipInline]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        project_default_for(org=obj)  # every organization has its Default project


class ProjectMembershipInline(admin.TabularInline):
    model = ProjectMembership
    extra = 0
    readonly_fields = ["membership", "role", "created_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    """Projects are made and changed in Settings → Projects (audited there); operators
    look, and may archive (also audited)."""

    list_display = ["name", "organization", "is_default", "archived_at", "created_at"]
    list_filter = [("archived_at", admin.EmptyFieldListFilter), "is_default", "organization"]
    search_fields = ["name", "organization__name", "organization__slug"]
    list_select_related = ["organization"]
    readonly_fields = [
        "organization",
        "name",
        "description",
        "is_default",
        "archived_at",
        "created_at",
    ]
    fields = readonly_fields
    inlines = [ProjectMembershipInline]
    actions = ["archive"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Archive selected projects (their keys stop working)")
    def archive(self, request, queryset) -> None:
        done = 0
        for project in queryset.filter(archived_at__isnull=True).select_related("organization"):
            try:
                project_archive(project=project, actor=request.user)
            except ProjectError:
                continue  # the Default project stays active
            done += 1
        self.message_user(request, f"Archived {done} project(s); Default projects stay.")


@admin.register(SSOProvider)
class SSOProviderAdmin(admin.ModelAdmin):
    """Which organizations sign in through a provider; owners change it in Security, where
    it is audited. The client secret (encrypted) is never shown."""

    list_display = ["organization", "issuer", "client_id", "required", "enabled", "updated_at"]
    list_filter = ["required", "enabled"]
    search_fields = ["organization__name", "organization__slug", "issuer"]
    exclude = ["client_secret_encrypted"]
    readonly_fields = ["domains"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "organization__name"]
    autocomplete_fields = ["user", "organization"]


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    """Keys are issued in the console (the secret is shown once there); admin revokes."""

    list_display = [
        "name",
        "organization",
        "project",
        "kind",
        "display",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["kind", ("revoked_at", admin.EmptyFieldListFilter), ProjectListFilter]
    search_fields = ["name", "organization__name", "project__name", "last_four"]
    list_select_related = ["organization", "project"]
    readonly_fields = ["display", "prefix", "last_four", "created_at", "last_used_at", "revoked_at"]
    fields = [
        "organization",
        "project",
        "name",
        "kind",
        "user",
        "display",
        "rate_limit_rpm",
        "rate_limit_tpm",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    autocomplete_fields = ["organization", "user"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return (
            [*self.readonly_fields, "organization", "project", "kind", "user"]
            if obj
            else self.readonly_fields
        )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        for key in queryset.filter(revoked_at__isnull=True):
            apikey_revoke(key=key, actor=request.user)
        self.message_user(request, "Revoked.")


@admin.register(SessionToken)
class SessionTokenAdmin(admin.ModelAdmin):
    """Account session tokens (only their hashes are stored): operators can see and
    revoke them; people issue and renew their own in Settings."""

    list_display = ["display", "user", "organization", "created_at", "expires_at", "revoked_at"]
    list_filter = ["organization"]
    search_fields = ["user__email", "last_four", "name"]
    readonly_fields = [
        "user",
        "organization",
        "name",
        "prefix",
        "last_four",
        "created_at",
        "expires_at",
        "renewed_at",
        "last_used_at",
    ]
    exclude = ["token_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke the selected session tokens")
    def revoke(self, request, queryset) -> None:
        live = list(queryset.filter(revoked_at__isnull=True).select_related("user", "organization"))
        for token in live:
            session_token_revoke(token=token, actor=request.user)
        self.message_user(request, f"Revoked {len(live)} session token(s).")


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(_ReadOnly):
    """Invitations are sent from Settings → Members; operators look."""

    list_display = ["email", "organization", "role", "sent_at", "expires_at", "accepted_at"]
    list_filter = ["role"]
    search_fields = ["email", "organization__name"]
    exclude = ["nonce"]


@admin.register(AuditEvent)
class AuditEventAdmin(_ReadOnly):
    """The audit log is append-only: operators read it; nobody edits or deletes a row."""

    list_display = ["created_at", "organization", "actor_email", "action", "summary", "ip_address"]
    list_filter = ["action", "by_operator"]
    search_fields = ["organization__name", "organization__slug", "actor_email", "summary"]
    list_select_related = ["organization"]
    date_hierarchy = "created_at"
    actions = None
