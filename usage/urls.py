from django.urls import path

from usage import charge_views, controller_views, explore_views, panel_views

app_name = "usage"

urlpatterns = [
    path("", panel_views.usage_panel, name="panel"),
    path("timeline.csv", panel_views.timeline_csv, name="timeline_csv"),
    path("explore/", explore_views.explore, name="explore"),
    path("explore.csv", explore_views.explore_csv, name="explore_csv"),
    path("charges/batch/<int:batch_id>/", charge_views.batch_charges, name="batch"),
    path("charges/job/<int:job_pk>/", charge_views.job_charge, name="job"),
    path("controllers/", controller_views.controllers, name="controllers"),
    path("controllers/create", controller_views.controller_create, name="controller_create"),
    path(
        "controllers/<int:controller_id>/rotate",
        controller_views.controller_rotate,
        name="controller_rotate",
    ),
]
