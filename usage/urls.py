from django.urls import path

from usage.views import charges, controllers, explore, panel

app_name = "usage"

urlpatterns = [
    path("", panel.usage_panel, name="panel"),
    path("timeline.csv", panel.timeline_csv, name="timeline_csv"),
    path("explore/", explore.explore, name="explore"),
    path("explore.csv", explore.explore_csv, name="explore_csv"),
    path("charges/batch/<int:batch_id>/", charges.batch_charges, name="batch"),
    path("charges/job/<int:job_pk>/", charges.job_charge, name="job"),
    path("controllers/", controllers.controllers, name="controllers"),
    path("controllers/create", controllers.controller_create, name="controller_create"),
    path(
        "controllers/<int:controller_id>/rotate",
        controllers.controller_rotate,
        name="controller_rotate",
    ),
]
