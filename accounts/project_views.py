"""Settings → Projects: the projects you see with their keys and people; owners and
admins create, rename, archive and unarchive them and limit members to some of them."""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.confirm import Confirmation, confirm_page
from accounts.forms import ProjectForm, ProjectGrantForm, ProjectRateLimitsForm
from accounts.http import OrgRequest, org_view
from accounts.models import PROJECT_LIMITABLE_ROLES, Membership, Project, ProjectMembership
from accounts.project_sections import project_page_sections
from accounts.projects import (
    ProjectError,
    membership_projects_unlimit,
    project_archive,
    project_create,
    project_grant_remove,
    project_grant_set,
    project_rate_limits_set,
    project_unarchive,
    project_update,
    projects_overview,
)


def _project(request: OrgRequest, project_id: int) -> Project:
    """A project the requester sees, else 404 (another organization's, or not granted)."""
    project = projects_overview(membership=request.membership).filter(pk=project_id).first()
    if project is None:
        raise Http404("No such project")
    return project


def _limitable_members(request: OrgRequest) -> list[tuple[int, str]]:
    return list(
        Membership.objects.filter(
            organization=request.organization, role__in=PROJECT_LIMITABLE_ROLES
        )
        .order_by("user__email")
        .values_list("pk", "user__email")
    )


def _projects_page(request: OrgRequest, *, form: ProjectForm, status: int = 200) -> HttpResponse:
    return render(
        request,
        "accounts/projects.html",
        {
            "nav": "settings",
            "projects": projects_overview(membership=request.membership),
            "form": form,
        },
        status=status,
    )


@org_view()
def projects(request: OrgRequest) -> HttpResponse:
    """Every project you see, with its active keys and the people limited to it."""
    return _projects_page(request, form=ProjectForm())


@org_view(manage=True)
@require_POST
def project_create_view(request: OrgRequest) -> HttpResponse:
    form = ProjectForm(request.POST)
    if form.is_valid():
        try:
            project = project_create(
                org=request.organization,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                actor=request.user,
            )
        except ProjectError as exc:
            form.add_error(exc.field or None, str(exc))
        else:
            messages.success(request, f"Created the project {project.name}.")
            return redirect(
                "accounts:project", org_slug=request.organization.slug, project_id=project.pk
            )
    return _projects_page(request, form=form, status=400)


def _project_page(
    request: OrgRequest,
    project: Project,
    *,
    form: ProjectForm | None = None,
    grant_form: ProjectGrantForm | None = None,
    limits_form: ProjectRateLimitsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    members = _limitable_members(request)
    return render(
        request,
        "accounts/project.html",
        {
            "nav": "settings",
            "project": project,
            "form": form
            or ProjectForm(initial={"name": project.name, "description": project.description}),
            "grant_form": grant_form or ProjectGrantForm(members=members),
            "limits_form": limits_form
            or ProjectRateLimitsForm(
                initial={
                    "rate_limit_rpm": project.rate_limit_rpm,
                    "rate_limit_tpm": project.rate_limit_tpm,
                }
            ),
            "sections": project_page_sections(request, project),
            "keys": project.api_keys.select_related("user").order_by("-created_at"),
        },
        status=status,
    )


@org_view()
def project_detail(request: OrgRequest, project_id: int) -> HttpResponse:
    """One project: its keys and people; owners and admins change it here."""
    return _project_page(request, _project(request, project_id))


@org_view(manage=True)
@require_POST
def project_update_view(request: OrgRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    form = ProjectForm(request.POST)
    if form.is_valid():
        try:
            project_update(
                project=project,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                actor=request.user,
            )
        except ProjectError as exc:
            form.add_error(exc.field or None, str(exc))
        else:
            messages.success(request, f"Saved the project {project.name}.")
            return redirect(
                "accounts:project", org_slug=request.organization.slug, project_id=project.pk
            )
    return _project_page(request, _project(request, project_id), form=form, status=400)


@org_view(manage=True)
@require_POST
def project_rate_limits_view(request: OrgRequest, project_id: int) -> HttpResponse:
    """Set the project's requests and tokens per minute (authorize applies them)."""
    project = _project(request, project_id)
    form = ProjectRateLimitsForm(request.POST)
    if form.is_valid():
        try:
            project_rate_limits_set(
                project=project,
                rpm=form.cleaned_data["rate_limit_rpm"],
                tpm=form.cleaned_data["rate_limit_tpm"],
                actor=request.user,
            )
        except ProjectError as exc:
            form.add_error(exc.field or None, str(exc))
        else:
            messages.success(request, f"Saved the rate limits of the project {project.name}.")
            return redirect(
                "accounts:project", org_slug=request.organization.slug, project_id=project.pk
            )
    return _project_page(request, project, limits_form=form, status=400)


@org_view(manage=True)
@require_http_methods(["GET", "POST"])
def project_archive_view(request: OrgRequest, project_id: int) -> HttpResponse:
    """Archive (asks first): the project's keys stop working; its history stays."""
    project = _project(request, project_id)
    back = reverse("accounts:project", args=[request.organization.slug, project.pk])
    if project.is_default:
        messages.error(request, "The Default project cannot be archived.")
        return redirect(back)
    if request.method == "GET":
        return confirm_page(
            request,
            Confirmation(
                title=f"Archive the project \u201c{project.name}\u201d?",
                consequence=f"Its {project.keys_active} active key(s) stop working at once: "
                "programs using them get 403 project_archived. Its usage history stays, "
                "and unarchiving makes the keys work again.",
                action="Archive project",
                back=back,
            ),
        )
    project_archive(project=project, actor=request.user)
    messages.success(
        request,
        f"Archived {project.name}: its {project.keys_active} active key(s) stopped working.",
    )
    return redirect(back)


@org_view(manage=True)
@require_http_methods(["GET", "POST"])
def project_unarchive_view(request: OrgRequest, project_id: int) -> HttpResponse:
    """Unarchive (asks first): the project's keys that were not revoked work again."""
    project = _project(request, project_id)
    back = reverse("accounts:project", args=[request.organization.slug, project.pk])
    if request.method == "GET":
        return confirm_page(
            request,
            Confirmation(
                title=f"Unarchive the project \u201c{project.name}\u201d?",
                consequence=f"Its {project.keys_active} key(s) that were not revoked work "
                "again from now on.",
                action="Unarchive project",
                back=back,
            ),
        )
    project_unarchive(project=project, actor=request.user)
    messages.success(request, f"Unarchived {project.name}: its keys work again.")
    return redirect(back)


@org_view(manage=True)
@require_POST
def project_grant_view(request: OrgRequest, project_id: int) -> HttpResponse:
    """Limit a member or viewer to this project (and the others they are granted)."""
    project = _project(request, project_id)
    form = ProjectGrantForm(request.POST, members=_limitable_members(request))
    if form.is_valid():
        membership = Membership.objects.select_related("user").get(
            organization=request.organization, pk=int(form.cleaned_data["member"])
        )
        try:
            project_grant_set(
                project=project,
                membership=membership,
                role=form.cleaned_data["role"],
                actor=request.user,
            )
        except ProjectError as exc:
            form.add_error(exc.field or None, str(exc))
        else:
            messages.success(
                request,
                f"{membership.user.email} now sees {project.name} "
                "(and only the projects they are given).",
            )
            return redirect(
                "accounts:project", org_slug=request.organization.slug, project_id=project.pk
            )
    return _project_page(request, project, grant_form=form, status=400)


@org_view(manage=True)
@require_http_methods(["GET", "POST"])
def project_grant_remove_view(request: OrgRequest, project_id: int, grant_id: int) -> HttpResponse:
    """Take one person's access to the project away (asks first)."""
    project = _project(request, project_id)
    grant = get_object_or_404(
        ProjectMembership.objects.select_related("membership__user", "project__organization"),
        project=project,
        pk=grant_id,
    )
    back = reverse("accounts:project", args=[request.organization.slug, project.pk])
    email = grant.membership.user.email
    if request.method == "GET":
        return confirm_page(
            request,
            Confirmation(
                title=f"Remove {email} from \u201c{project.name}\u201d?",
                consequence=f"{email} no longer sees {project.name} or its keys. They stay "
                "limited to the projects they are still given (none, if this was the last).",
                action="Remove access",
                back=back,
            ),
        )
    project_grant_remove(grant=grant, actor=request.user)
    messages.success(request, f"Removed {email}'s access to {project.name}.")
    return redirect(back)


@org_view(manage=True)
@require_http_methods(["GET", "POST"])
def member_projects_unlimit_view(request: OrgRequest, member_id: int) -> HttpResponse:
    """Let a limited member see every project again (asks first)."""
    membership = get_object_or_404(
        Membership.objects.select_related("user"),
        organization=request.organization,
        pk=member_id,
        limited_to_projects=True,
    )
    back = reverse("accounts:projects", args=[request.organization.slug])
    if request.method == "GET":
        return confirm_page(
            request,
            Confirmation(
                title=f"Let {membership.user.email} see every project?",
                consequence="Their project grants are removed; they see every project and "
                "its keys as their organization role allows.",
                action="See every project",
                back=back,
            ),
        )
    membership_projects_unlimit(membership=membership, actor=request.user)
    messages.success(request, f"{membership.user.email} sees every project again.")
    return redirect(back)
