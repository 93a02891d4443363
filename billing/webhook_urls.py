"""Provider webhooks: outside any organization, authenticated by their signature."""

from django.urls import path

from billing import views

urlpatterns = [
    path("stripe/", views.stripe_webhook, name="stripe_webhook"),
]
