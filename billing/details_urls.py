"""Settings → Billing details (mounted under the organization's settings)."""

from django.urls import path

from billing import views

app_name = "billing_details"

urlpatterns = [path("", views.billing_details, name="edit")]
