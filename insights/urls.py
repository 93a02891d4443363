"""Everything under /usage/, in the `usage:` namespace the templates name: the panel and
Explore (here), what a debit charged and controllers (usage/urls.py), budgets, estimates
and key pauses (spend/urls.py). One namespace for three apps, so no URL or name changed
when usage/ was split; it is composed here, the highest of them."""

from django.urls import path

from insights.views import explore, panel
from spend import urls as spend_urls
from usage import urls as usage_urls

app_name = "usage"

urlpatterns = [
    path("", panel.usage_panel, name="panel"),
    path("timeline.csv", panel.timeline_csv, name="timeline_csv"),
    path("explore/", explore.explore, name="explore"),
    path("explore.csv", explore.explore_csv, name="explore_csv"),
    path("explore-groups.csv", explore.explore_groups_csv, name="explore_groups_csv"),
    *usage_urls.urlpatterns,
    *spend_urls.urlpatterns,
]
