"""Projects: writes (create, rename, archive, grants) and the reads every page, CSV and
API endpoint filters by (docs/projects.md).

Who sees which projects: owners, admins and billing members see every project of the
organization; a member or viewer sees every project too unless their membership is
limited to projects, and then only those granted to them. `projects_visible`,
`project_ids_visible` and `apikeys_visible` are the one place that rule is written.
"""

from functools import cached_property

from django.db import IntegrityError, transaction
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.audit import audit_record
from accounts.credential_cache import credentials_cache_clear
from accounts.models import (
    DEFAULT_PROJECT_NAME,
    MANAGER_ROLES,
    PROJECT_LIMITABLE_ROLES,
    APIKey,
    AuditAction,
    Membership,
    Organization,
    Project,
    ProjectMembership,
    ProjectRole,
    Role,
    User,
)


class ProjectError(ValueError):
    """A change refused, with the form field at fault (or "" for the whole form)."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


# --- Reads -------------------------------------------------------------------------------


def project_default_for(*, org: Organization) -> Project:
    """The organization's Default project, made if it has none yet (an organization made
    outside organization_create, e.g. in admin): every key needs one to belong to."""
    project = Project.objects.filter(organization=org, is_default=True).first()
    if project is not None:
        return project
    try:
        with transaction.atomic():
            return Project.objects.create(
                organization=org, name=DEFAULT_PROJECT_NAME, is_default=True
            )
    except IntegrityError:  # made meanwhile by a concurrent call
        return Project.objects.get(organization=org, is_default=True)


def projects_visible(*, membership: Membership) -> QuerySet[Project]:
    """The projects of the membership's organization this person may see (archived ones
    too), Default first, then by name."""
    projects = Project.objects.filter(organization_id=membership.organization_id)
    if membership.is_limited_to_projects:
        projects = projects.filter(grants__membership=membership)
    return projects


def project_ids_visible(*, membership: Membership) -> frozenset[int] | None:
    """The ids of the projects this person may see, or None when they see every project
    of the organization (then a query needs no project filter at all, only the
    organization's)."""
    if not membership.is_limited_to_projects:
        return None
    return frozenset(
        ProjectMembership.objects.filter(
            organization_id=membership.organization_id, membership=membership
        ).values_list("project_id", flat=True)
    )


def project_visible_get(*, membership: Membership, project_id: int) -> Project | None:
    """One project this person may see, or None (another organization's, or one they are
    not granted: both answer 404)."""
    return projects_visible(membership=membership).filter(pk=project_id).first()


def project_ids_in_scope(
    *, membership: Membership, project_id: int | None
) -> frozenset[int] | None:
    """The projects a usage page reads for the project switcher's choice: the one chosen,
    or with none chosen ("All projects") every project the person sees; None when that is
    the whole organization (no project filter). Raises Http404 for a project they may not
    see (another organization's, or one a limited member is not granted)."""
    return _project_in_scope(membership, project_id)[0]


def _project_in_scope(
    membership: Membership, project_id: int | None
) -> tuple[frozenset[int] | None, Project | None]:
    """(project_ids_in_scope, the project chosen or None); one query at most."""
    if project_id is None:
        return project_ids_visible(membership=membership), None
    project = project_visible_get(membership=membership, project_id=project_id)
    if project is None:
        raise Http404("No such project")
    return frozenset({project.pk}), project


def project_choice_parse(value: str | None) -> int | None:
    """The switcher's `project` query parameter as a project id: absent or empty is All
    projects (None); anything else that is not a positive id answers 404 like a project
    the person may not see."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not value.isascii() or not value.isdigit() or int(value) < 1 or len(value) > 18:
        raise Http404("No such project")
    return int(value)


class ProjectScope:
    """What a usage page reads and its project switcher shows: the projects in scope
    (`ids`, None: the whole organization), the one chosen (None: All projects) and the
    choices (the visible projects, archived ones too; read only when a page shows them)."""

    def __init__(
        self, *, membership: Membership, ids: frozenset[int] | None, chosen: Project | None
    ) -> None:
        self.membership = membership
        self.ids = ids
        self.chosen = chosen

    @cached_property
    def choices(self) -> list[Project]:
        return list(projects_visible(membership=self.membership))

    @property
    def param(self) -> str:
        """The `project` query parameter that keeps this choice ("" for All projects)."""
        return "" if self.chosen is None else str(self.chosen.pk)


def project_scope_for(*, membership: Membership, value: str | None) -> ProjectScope:
    """The scope of a usage page from its `project` query parameter (404 for a project
    the person may not see), by the rule of `project_ids_in_scope`."""
    ids, chosen = _project_in_scope(membership, project_choice_parse(value))
    return ProjectScope(membership=membership, ids=ids, chosen=chosen)


def apikeys_visible(*, membership: Membership) -> QuerySet[APIKey]:
    """The API keys of the projects this person may see, newest first (revoked too)."""
    keys = APIKey.objects.select_related("user", "project").filter(
        organization_id=membership.organization_id
    )
    ids = project_ids_visible(membership=membership)
    if ids is not None:
        keys = keys.filter(project_id__in=ids)
    return keys


def project_role_of(*, membership: Membership, project: Project) -> str | None:
    """The person's role in the project: admin for owners and admins, their grant's role
    when limited, else their organization role's match (member, viewer); None for a
    billing member (no keys) or a project they may not see."""
    if project.organization_id != membership.organization_id:
        return None
    if membership.role in MANAGER_ROLES:
        return ProjectRole.ADMIN
    if membership.role not in PROJECT_LIMITABLE_ROLES:
        return None
    if not membership.is_limited_to_projects:
        return membership.role
    grant = ProjectMembership.objects.filter(membership=membership, project=project).first()
    return grant.role if grant is not None else None


def project_keys_manageable(*, membership: Membership, project: Project) -> bool:
    """Whether the person creates and revokes the project's keys (owners, admins and the
    project's admins)."""
    return project_role_of(membership=membership, project=project) == ProjectRole.ADMIN


def projects_key_manageable(*, membership: Membership) -> QuerySet[Project]:
    """The active projects whose keys this person manages (where they may create one)."""
    projects = projects_visible(membership=membership).filter(archived_at__isnull=True)
    if membership.role in MANAGER_ROLES:
        return projects
    if not membership.is_limited_to_projects:
        return projects.none()
    return projects.filter(grants__membership=membership, grants__role=ProjectRole.ADMIN)


def projects_overview(*, membership: Membership) -> QuerySet[Project]:
    """The visible projects with their active keys counted and their grants (with each
    person) prefetched, for the Projects page and API."""
    grants = ProjectMembership.objects.select_related("membership__user").order_by(
        "membership__user__email"
    )
    return (
        projects_visible(membership=membership)
        .annotate(
            keys_active=Count(
                "api_keys", filter=Q(api_keys__revoked_at__isnull=True), distinct=True
            )
        )
        .prefetch_related(Prefetch("grants", queryset=grants))
    )


# --- Writes ------------------------------------------------------------------------------


def _name_clean(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ProjectError("A project needs a name.", field="name")
    if len(name) > 100:
        raise ProjectError("A project's name has at most 100 characters.", field="name")
    return name


def _name_free(*, org: Organization, name: str, exclude: int | None = None) -> None:
    taken = Project.objects.filter(organization=org, name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise ProjectError(f"There is already a project named \u201c{name}\u201d.", field="name")


@transaction.atomic
def project_create(
    *, org: Organization, name: str, description: str = "", actor: User | None = None
) -> Project:
    """Create an active project in the organization (names unique, ignoring case)."""
    name = _name_clean(name)
    _name_free(org=org, name=name)
    project = Project.objects.create(
        organization=org, name=name, description=description.strip()[:500]
    )
    audit_record(
        org=org,
        actor=actor,
        action=AuditAction.PROJECT_CREATED,
        summary=f"Created the project {project.name}",
        target=f"project:{project.pk}",
        data={"name": project.name},
    )
    return project


@transaction.atomic
def project_update(
    *,
    project: Project,
    name: str | None = None,
    description: str | None = None,
    actor: User | None = None,
) -> Project:
    """Rename the project or change its description; nothing changed, nothing recorded."""
    changes: dict[str, list[str]] = {}
    if name is not None:
        name = _name_clean(name)
        if name != project.name:
            _name_free(org=project.organization, name=name, exclude=project.pk)
            changes["name"] = [project.name, name]
            project.name = name
    if description is not None and description.strip()[:500] != project.description:
        changes["description"] = [project.description, description.strip()[:500]]
        project.description = description.strip()[:500]
    if not changes:
        return project
    project.save(update_fields=list(changes))
    old = changes.get("name", [project.name])[0]
    audit_record(
        org=project.organization,
        actor=actor,
        action=AuditAction.PROJECT_UPDATED,
        summary=f"Renamed the project {old} to {project.name}"
        if "name" in changes
        else f"Changed the description of the project {project.name}",
        target=f"project:{project.pk}",
        data=changes,
    )
    return project


def _limit_words(value: int | None, unit: str) -> str:
    return f"no {unit} limit" if value is None else f"{value:,} {unit}s per minute"


@transaction.atomic
def project_rate_limits_set(
    *, project: Project, rpm: int | None, tpm: int | None, actor: User | None = None
) -> Project:
    """Set the project's requests and tokens per minute over all its keys (None: no
    limit); authorize applies them with the key's own, the tightest first. Every process
    sees the change within the credential cache's second."""
    for field, value in (("rate_limit_rpm", rpm), ("rate_limit_tpm", tpm)):
        if value is not None and value < 1:
            raise ProjectError("Must be at least 1, or empty for no limit.", field=field)
    before = [project.rate_limit_rpm, project.rate_limit_tpm]
    if before == [rpm, tpm]:
        return project
    project.rate_limit_rpm, project.rate_limit_tpm = rpm, tpm
    project.save(update_fields=["rate_limit_rpm", "rate_limit_tpm"])
    credentials_cache_clear()
    audit_record(
        org=project.organization,
        actor=actor,
        action=AuditAction.PROJECT_RATE_LIMITS_CHANGED,
        summary=f"Set the rate limits of the project {project.name}: "
        f"{_limit_words(rpm, 'request')} and {_limit_words(tpm, 'token')}",
        target=f"project:{project.pk}",
        data={"rate_limits": [before, [rpm, tpm]]},
    )
    return project


@transaction.atomic
def project_archive(*, project: Project, actor: User | None = None) -> Project:
    """Archive the project: its keys are refused from now on (in every process within
    the credential cache's second); its history stays. Idempotent."""
    if project.is_default:
        raise ProjectError("The Default project cannot be archived.")
    archived = Project.objects.filter(pk=project.pk, archived_at__isnull=True).update(
        archived_at=timezone.now()
    )
    credentials_cache_clear()
    project.refresh_from_db(fields=["archived_at"])
    if archived:
        audit_record(
            org=project.organization,
            actor=actor,
            action=AuditAction.PROJECT_ARCHIVED,
            summary=f"Archived the project {project.name}: its keys stopped working",
            target=f"project:{project.pk}",
        )
    return project


@transaction.atomic
def project_unarchive(*, project: Project, actor: User | None = None) -> Project:
    """Make an archived project active again: its keys that were not revoked work again."""
    unarchived = Project.objects.filter(pk=project.pk, archived_at__isnull=False).update(
        archived_at=None
    )
    credentials_cache_clear()
    project.refresh_from_db(fields=["archived_at"])
    if unarchived:
        audit_record(
            org=project.organization,
            actor=actor,
            action=AuditAction.PROJECT_UNARCHIVED,
            summary=f"Unarchived the project {project.name}: its keys work again",
            target=f"project:{project.pk}",
        )
    return project


@transaction.atomic
def project_grant_set(
    *, project: Project, membership: Membership, role: str, actor: User | None = None
) -> ProjectMembership:
    """Give a member or viewer access to the project with a project role; the membership
    is limited to its granted projects from then on."""
    if membership.organization_id != project.organization_id:
        raise ProjectError("That person is not a member of this organization.", field="member")
    if role not in ProjectRole.values:
        raise ProjectError(f"Unknown project role {role!r}.", field="role")
    if membership.role not in PROJECT_LIMITABLE_ROLES:
        raise ProjectError(
            f"{membership.user.email} is {Role(membership.role).label.lower()} of the "
            "organization and sees every project; only members and viewers are limited.",
            field="member",
        )
    grant, _ = ProjectMembership.objects.update_or_create(
        organization_id=project.organization_id,
        membership=membership,
        project=project,
        defaults={"role": role},
    )
    if not membership.limited_to_projects:
        Membership.objects.filter(pk=membership.pk).update(limited_to_projects=True)
        membership.limited_to_projects = True
        credentials_cache_clear()  # their session tokens carry the membership
    audit_record(
        org=project.organization,
        actor=actor,
        action=AuditAction.PROJECT_MEMBER_SET,
        summary=f"Gave {membership.user.email} access to {project.name} as "
        f"{ProjectRole(role).label.lower()}",
        target=f"project:{project.pk}",
        data={"email": membership.user.email, "role": role},
    )
    return grant


@transaction.atomic
def project_grant_remove(*, grant: ProjectMembership, actor: User | None = None) -> None:
    """Take a limited member's access to one project away (they stay limited: with no
    grant left they see no project, never all of them)."""
    project, email = grant.project, grant.membership.user.email
    grant.delete()
    audit_record(
        org=project.organization,
        actor=actor,
        action=AuditAction.PROJECT_MEMBER_REMOVED,
        summary=f"Removed {email}'s access to {project.name}",
        target=f"project:{project.pk}",
        data={"email": email},
    )


@transaction.atomic
def membership_projects_unlimit(*, membership: Membership, actor: User | None = None) -> None:
    """Let a limited member see every project again (their grants are removed)."""
    ProjectMembership.objects.filter(membership=membership).delete()
    Membership.objects.filter(pk=membership.pk).update(limited_to_projects=False)
    membership.limited_to_projects = False
    credentials_cache_clear()
    audit_record(
        org=membership.organization,
        actor=actor,
        action=AuditAction.PROJECT_LIMIT_CHANGED,
        summary=f"{membership.user.email} sees every project again",
        target=f"membership:{membership.pk}",
    )
