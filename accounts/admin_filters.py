"""The admin's project filter, shared by every list whose rows carry a project (keys,
usage records, controllers, batches, budgets, reservations, alert rules).

Django's plain related-field filter would offer every project by name only, and every
organization has a "Default": the choices here name the organization too, and narrow to
one organization's projects once the list is filtered by organization. The choices come
from the projects table (one query), never from the rows listed, which may be millions.
"""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import Project


class ProjectListFilter(admin.SimpleListFilter):
    title = "project"
    parameter_name = "project"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        projects = Project.objects.select_related("organization").order_by(
            "organization__name", "-is_default", "name"
        )
        org_id = request.GET.get("organization__id__exact") or request.GET.get("organization")
        if org_id and org_id.isdigit():
            projects = projects.filter(organization_id=int(org_id))
        return [(str(p.pk), f"{p.organization.name} · {p.name}") for p in projects]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(project_id=int(value))
        return queryset
