from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.organization_settings, name="organization_settings"),
    path("keys/", views.api_keys, name="api_keys"),
    path("keys/create", views.api_key_create, name="api_key_create"),
    path("keys/<int:key_id>/revoke", views.api_key_revoke, name="api_key_revoke"),
]
