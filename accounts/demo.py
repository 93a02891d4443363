"""The demo organization's projects: which key works for which, and a member limited to
one of them (docs/projects.md), so every page shows the dimension with real data."""

from datetime import datetime

from accounts.audit import audit_dated
from accounts.models import Membership, Organization, Project, ProjectRole, User
from accounts.projects import project_create, project_default_for, project_grant_set

# (name, description); the Default project exists already.
DEMO_PROJECTS = [
    ("Research", "Experiments, notebooks and the lab's workstations"),
    ("Production app", "The customer-facing backend"),
]
# The key of this name works for this project; keys not named (the CI keys) stay in
# Default.
DEMO_KEY_PROJECTS = {
    "Lab workstation": "Research",
    "Ana's notebook": "Research",
    "Production backend": "Production app",
}
# The controller of this name is registered in this project; dgx-01, shared, in Default.
DEMO_CONTROLLER_PROJECTS = {
    "gpu-box-02": "Production app",
    "lab-node-03": "Research",
}
# (email, project, project role): a member who sees only that project.
DEMO_LIMITED_MEMBER = ("ben@acme.example", "Research", ProjectRole.MEMBER)


def projects_demo_ensure(*, org: Organization, at: datetime, actor: User | None = None) -> None:
    """The demo's projects, made once (a rerun finds them), dated `at` (before the keys
    that work for them)."""
    default = project_default_for(org=org)
    if default.created_at > at:
        Project.objects.filter(pk=default.pk).update(created_at=at)
    for name, description in DEMO_PROJECTS:
        if Project.objects.filter(organization=org, name=name).exists():
            continue
        with audit_dated(at):
            project = project_create(org=org, name=name, description=description, actor=actor)
        Project.objects.filter(pk=project.pk).update(created_at=at)


def demo_key_project(*, org: Organization, key_name: str) -> Project | None:
    """The project a demo key is created in (None: the Default project)."""
    name = DEMO_KEY_PROJECTS.get(key_name)
    return Project.objects.filter(organization=org, name=name).first() if name else None


def demo_controller_project(*, org: Organization, controller_name: str) -> Project | None:
    """The project a demo controller is registered in (None: the Default project). An
    organization made without the demo's projects (tests) keeps everything in Default."""
    name = DEMO_CONTROLLER_PROJECTS.get(controller_name)
    return Project.objects.filter(organization=org, name=name).first() if name else None


def projects_demo_people(*, org: Organization, at: datetime, actor: User | None = None) -> None:
    """Limit the demo's one member to their project (once), dated `at`."""
    email, project_name, role = DEMO_LIMITED_MEMBER
    membership = Membership.objects.filter(organization=org, user__email=email).first()
    project = Project.objects.filter(organization=org, name=project_name).first()
    if membership is None or project is None or membership.limited_to_projects:
        return
    with audit_dated(at):
        project_grant_set(project=project, membership=membership, role=role, actor=actor)
