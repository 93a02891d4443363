from django.urls import path

from usage.views import charges, controllers, explore, panel, spend

app_name = "usage"

urlpatterns = [
    path("", panel.usage_panel, name="panel"),
    path("timeline.csv", panel.timeline_csv, name="timeline_csv"),
    path("explore/", explore.explore, name="explore"),
    path("explore.csv", explore.explore_csv, name="explore_csv"),
    path("explore-groups.csv", explore.explore_groups_csv, name="explore_groups_csv"),
    path("charges/batch/<int:batch_id>/", charges.batch_charges, name="batch"),
    path("charges/job/<int:job_pk>/", charges.job_charge, name="job"),
    path("controllers/", controllers.controllers, name="controllers"),
    path("controllers/create", controllers.controller_create, name="controller_create"),
    path(
        "controllers/<int:controller_id>/rotate",
        controllers.controller_rotate,
        name="controller_rotate",
    ),
    # Spend controls: Usage → Estimate, Settings → Budgets, pausing a key.
    path("estimate/", spend.estimate, name="estimate"),
    path("budgets/", spend.budgets, name="budgets"),
    path("budgets/create", spend.budget_add, name="budget_add"),
    path("budgets/<int:budget_id>/edit", spend.budget_edit, name="budget_edit"),
    path("budgets/<int:budget_id>/remove", spend.budget_remove, name="budget_remove"),
    path("keys/<int:key_id>/pause", spend.key_pause, name="key_pause"),
    path("keys/<int:key_id>/resume", spend.key_resume, name="key_resume"),
]
