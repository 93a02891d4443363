from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.organization_settings, name="organization_settings"),
]
