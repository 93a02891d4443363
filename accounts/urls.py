from django.urls import path

from accounts import project_views, signin_views, team_views, views

app_name = "accounts"

urlpatterns = [
    path("", views.organization_settings, name="organization_settings"),
    path("keys/", views.api_keys, name="api_keys"),
    path("keys/create", views.api_key_create, name="api_key_create"),
    path("keys/<int:key_id>/revoke", views.api_key_revoke, name="api_key_revoke"),
    path("projects/", project_views.projects, name="projects"),
    path("projects/create", project_views.project_create_view, name="project_create"),
    path("projects/<int:project_id>/", project_views.project_detail, name="project"),
    path(
        "projects/<int:project_id>/edit", project_views.project_update_view, name="project_update"
    ),
    path(
        "projects/<int:project_id>/rate-limits",
        project_views.project_rate_limits_view,
        name="project_rate_limits",
    ),
    path(
        "projects/<int:project_id>/archive",
        project_views.project_archive_view,
        name="project_archive",
    ),
    path(
        "projects/<int:project_id>/unarchive",
        project_views.project_unarchive_view,
        name="project_unarchive",
    ),
    path(
        "projects/<int:project_id>/members", project_views.project_grant_view, name="project_grant"
    ),
    path(
        "projects/<int:project_id>/members/<int:grant_id>/remove",
        project_views.project_grant_remove_view,
        name="project_grant_remove",
    ),
    path(
        "members/<int:member_id>/projects/unlimit",
        project_views.member_projects_unlimit_view,
        name="member_projects_unlimit",
    ),
    path("tokens/", views.session_tokens, name="session_tokens"),
    path("tokens/create", views.session_token_create, name="session_token_create"),
    path("tokens/<int:token_id>/renew", views.session_token_renew_view, name="session_token_renew"),
    path(
        "tokens/<int:token_id>/revoke", views.session_token_revoke_view, name="session_token_revoke"
    ),
    path("members/", team_views.members, name="members"),
    path("members/invite", team_views.member_invite, name="member_invite"),
    path("members/<int:member_id>/role", team_views.member_role, name="member_role"),
    path("members/<int:member_id>/remove", team_views.member_remove_view, name="member_remove"),
    path(
        "invitations/<int:invitation_id>/resend",
        team_views.invitation_resend_view,
        name="invitation_resend",
    ),
    path(
        "invitations/<int:invitation_id>/revoke",
        team_views.invitation_revoke_view,
        name="invitation_revoke",
    ),
    path("security/", signin_views.security, name="security"),
    path("security/two-factor", signin_views.two_factor_policy, name="two_factor_policy"),
    path("security/sessions/<int:session_id>/end", signin_views.session_end, name="session_end"),
    path(
        "security/sessions/end-others", signin_views.sessions_end_others, name="sessions_end_others"
    ),
    path("security/sso", signin_views.sso_provider_update, name="sso_provider_update"),
    path("security/sso/test", signin_views.sso_provider_test, name="sso_provider_test"),
    path("audit/", team_views.audit_log, name="audit_log"),
    path("audit/audit-log.csv", team_views.audit_log_csv, name="audit_log_csv"),
]
