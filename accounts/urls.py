from django.urls import path

from accounts import signin_views, team_views, views

app_name = "accounts"

urlpatterns = [
    path("", views.organization_settings, name="organization_settings"),
    path("keys/", views.api_keys, name="api_keys"),
    path("keys/create", views.api_key_create, name="api_key_create"),
    path("keys/<int:key_id>/revoke", views.api_key_revoke, name="api_key_revoke"),
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
