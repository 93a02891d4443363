"""The records' pages: what a usage debit charged, and Settings → Controllers. Mounted
under /usage/ in the `usage:` namespace by insights/urls.py."""

from django.urls import path

from usage.views import charges, controllers

urlpatterns = [
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
