from django.urls import include, path

from accounts import views

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
    path("alerts/", include("billing.alerts.urls")),
]
