from django.urls import path

from usage import controller_views, panel_views

app_name = "usage"

urlpatterns = [
    path("", panel_views.usage_panel, name="panel"),
    path("timeline.csv", panel_views.timeline_csv, name="timeline_csv"),
    path("controllers/", controller_views.controllers, name="controllers"),
    path("controllers/create", controller_views.controller_create, name="controller_create"),
    path(
        "controllers/<int:controller_id>/rotate",
        controller_views.controller_rotate,
        name="controller_rotate",
    ),
]
