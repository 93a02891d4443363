"""Spend controls' pages: Usage → Estimate, Settings → Budgets, pausing a key. Mounted
under /usage/ in the `usage:` namespace by insights/urls.py."""

from django.urls import path

from spend import views

urlpatterns = [
    path("estimate/", views.estimate, name="estimate"),
    path("budgets/", views.budgets, name="budgets"),
    path("budgets/create", views.budget_add, name="budget_add"),
    path("budgets/<int:budget_id>/edit", views.budget_edit, name="budget_edit"),
    path("budgets/<int:budget_id>/remove", views.budget_remove, name="budget_remove"),
    path("keys/<int:key_id>/pause", views.key_pause, name="key_pause"),
    path("keys/<int:key_id>/resume", views.key_resume, name="key_resume"),
]
