from django.urls import path

from usage import charge_views, controller_views, explore_views, panel_views, spend_views

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
    # Spend controls (issue 16): Usage → Estimate, Settings → Budgets, key pause.
    path("estimate/", spend_views.estimate, name="estimate"),
    path("budgets/", spend_views.budgets, name="budgets"),
    path("budgets/create", spend_views.budget_add, name="budget_add"),
    path("budgets/<int:budget_id>/edit", spend_views.budget_edit, name="budget_edit"),
    path("budgets/<int:budget_id>/remove", spend_views.budget_remove, name="budget_remove"),
    path("keys/<int:key_id>/pause", spend_views.key_pause, name="key_pause"),
    path("keys/<int:key_id>/resume", spend_views.key_resume, name="key_resume"),
]
