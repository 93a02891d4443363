"""The program-facing API, mounted at /api/v1/."""

from django.urls import path

from usage import api

app_name = "api"

urlpatterns = [
    path("usage/records", api.usage_records, name="usage_records"),
    path("jobs", api.jobs_submit, name="jobs_submit"),
    path("jobs/<str:client_id>", api.jobs_detail, name="jobs_detail"),
    path("jobs/<str:client_id>/transition", api.jobs_transition, name="jobs_transition"),
    path("controllers/heartbeat", api.controller_heartbeat_view, name="controller_heartbeat"),
]
