"""Accounts' API for projects and the API keys in them (docs/projects.md).

Session tokens see the projects their person sees (a member limited to projects: only
those); an API key sees its own project. Owners and admins change projects through
their own session token. Another organization's project, or one not visible, is a 404.
"""

from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from accounts.api_core import API_KEY_OR_SESSION, Principal
from accounts.models import APIKey, APIKeyKind, Project
from accounts.projects import (
    ProjectError,
    apikeys_visible,
    project_archive,
    project_create,
    project_keys_manageable,
    project_rate_limits_set,
    project_unarchive,
    project_update,
    projects_visible,
)
from accounts.services import apikey_create
from core.api import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    APIError,
    ErrorOut,
    PageMeta,
    not_found,
    paginate,
)

router = Router(tags=["Projects"], auth=API_KEY_OR_SESSION)


class APIRequest(HttpRequest):
    auth: Principal


class ProjectOut(Schema):
    id: int
    name: str
    description: str
    is_default: bool = Field(description="The organization's Default project (never archived).")
    archived: bool = Field(description="An archived project's keys are refused (403).")
    archived_at: datetime | None
    created_at: datetime
    active_keys: int = Field(description="Keys of the project not revoked.")
    rate_limit_rpm: int | None = Field(
        description="Requests per minute over all the project's keys together; null: none."
    )
    rate_limit_tpm: int | None = Field(
        description="Tokens per minute over all the project's keys together; null: none."
    )


class ProjectListOut(PageMeta):
    items: list[ProjectOut]


class ProjectIn(Schema):
    name: str = Field(min_length=1, max_length=100, description="Unique in the organization.")
    description: str = Field("", max_length=500)


class ProjectPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    archived: bool | None = Field(
        None, description="true archives (its keys stop working), false unarchives."
    )
    rate_limit_rpm: int | None = Field(
        None, ge=1, description="Requests per minute (at least 1); null removes the limit."
    )
    rate_limit_tpm: int | None = Field(
        None, ge=1, description="Tokens per minute (at least 1); null removes the limit."
    )


class ProjectRef(Schema):
    id: int
    name: str


class APIKeyOut(Schema):
    id: int
    name: str
    display: str = Field(description="The key's prefix and last four characters.")
    kind: str = Field(description="workspace or personal.")
    email: str | None = Field(description="A personal key's person.")
    project: ProjectRef
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class APIKeyListOut(PageMeta):
    items: list[APIKeyOut]


class APIKeyIn(Schema):
    name: str = Field(min_length=1, max_length=100, description="What uses it.")
    kind: APIKeyKind = Field(
        APIKeyKind.WORKSPACE, description="workspace, or personal (acts for you)."
    )
    project: int | None = Field(
        None, description="The project's id; the Default project when left out."
    )


class IssuedAPIKeyOut(APIKeyOut):
    secret: str = Field(description="The key: shown this once, store it safely.")


def _visible(principal: Principal) -> QuerySet[Project]:
    if principal.membership is not None:
        projects = projects_visible(membership=principal.membership)
    else:  # an API key acts for its own project
        projects = Project.objects.filter(
            organization=principal.organization,
            pk=principal.api_key.project_id,  # type: ignore[union-attr]
        )
    return projects.annotate(
        active_keys=Count("api_keys", filter=Q(api_keys__revoked_at__isnull=True), distinct=True)
    )


def _project_out(project: Any) -> dict:
    return {
        "id": project.pk,
        "name": project.name,
        "description": project.description,
        "is_default": project.is_default,
        "archived": project.is_archived,
        "archived_at": project.archived_at,
        "created_at": project.created_at,
        "active_keys": project.active_keys,
        "rate_limit_rpm": project.rate_limit_rpm,
        "rate_limit_tpm": project.rate_limit_tpm,
    }


def _get(principal: Principal, project_id: int) -> Project:
    project = _visible(principal).filter(pk=project_id).first()
    if project is None:
        raise not_found("no such project")
    return project


def _manager(principal: Principal) -> None:
    if not principal.can_manage:
        raise APIError(
            403,
            "forbidden",
            "changing projects needs the session token of an owner or admin of the organization",
        )


def _refused(exc: ProjectError) -> APIError:
    return APIError(400, "invalid_body", str(exc), field=exc.field or None)


@router.get(
    "/projects",
    response=ProjectListOut,
    url_name="projects",
    operation_id="accounts_api_projects_list",
    summary="The organization's projects you see, Default first",
)
def projects_list(
    request: APIRequest,
    archived: bool | None = Query(None, description="Only archived (true) or active (false)."),
    page: int = Query(1, ge=1, description="Page number, from 1."),
    page_size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Per page."),
):
    """A member limited to projects sees only theirs; an API key sees its own project."""
    projects = _visible(request.auth)
    if archived is not None:
        projects = projects.filter(archived_at__isnull=not archived)
    meta, rows = paginate(projects, page=page, page_size=page_size)
    return {**meta, "items": [_project_out(p) for p in rows]}


@router.post(
    "/projects",
    response={201: ProjectOut, 400: ErrorOut, 403: ErrorOut},
    url_name="project_create",
    operation_id="accounts_api_projects_create",
    summary="Create a project (owners and admins)",
)
def projects_create(request: APIRequest, payload: ProjectIn):
    principal = request.auth
    _manager(principal)
    try:
        project = project_create(
            org=principal.organization,
            name=payload.name,
            description=payload.description,
            actor=principal.membership.user,  # type: ignore[union-attr]
        )
    except ProjectError as exc:
        raise _refused(exc) from None
    return Status(201, _project_out(_get(principal, project.pk)))


@router.get(
    "/projects/{project_id}",
    response={200: ProjectOut, 404: ErrorOut},
    url_name="project",
    operation_id="accounts_api_projects_get",
    summary="One project",
)
def projects_get(request: APIRequest, project_id: int):
    return _project_out(_get(request.auth, project_id))


@router.patch(
    "/projects/{project_id}",
    response={200: ProjectOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    url_name="project_update",
    operation_id="accounts_api_projects_update",
    summary="Rename, describe, archive or unarchive a project, or set its rate limits "
    "(owners and admins)",
)
def projects_update(request: APIRequest, project_id: int, payload: ProjectPatch):
    """`archived: true` stops the project's keys at once (403 project_archived); the
    Default project cannot be archived (400). `rate_limit_rpm` / `rate_limit_tpm` set the
    project's limits (null: none; a field left out stays as it is)."""
    principal = request.auth
    project = _get(principal, project_id)
    _manager(principal)
    actor = principal.membership.user  # type: ignore[union-attr]
    try:
        project_update(
            project=project, name=payload.name, description=payload.description, actor=actor
        )
        if payload.archived is True:
            project_archive(project=project, actor=actor)
        elif payload.archived is False:
            project_unarchive(project=project, actor=actor)
        given = payload.model_fields_set  # null (no limit) differs from left out
        if given & {"rate_limit_rpm", "rate_limit_tpm"}:
            project_rate_limits_set(
                project=project,
                rpm=payload.rate_limit_rpm if "rate_limit_rpm" in given else project.rate_limit_rpm,
                tpm=payload.rate_limit_tpm if "rate_limit_tpm" in given else project.rate_limit_tpm,
                actor=actor,
            )
    except ProjectError as exc:
        field = "archived" if payload.archived and project.is_default else exc.field
        raise APIError(400, "invalid_body", str(exc), field=field or None) from None
    return _project_out(_get(principal, project.pk))


@router.get(
    "/api-keys",
    response=APIKeyListOut,
    url_name="api_keys",
    operation_id="accounts_api_api_keys_list",
    summary="The API keys of the projects you see (never their secrets), newest first",
)
def api_keys_list(
    request: APIRequest,
    project: int | None = Query(None, description="Only this project's keys (its id)."),
    page: int = Query(1, ge=1, description="Page number, from 1."),
    page_size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Per page."),
):
    principal = request.auth
    if principal.membership is not None:
        if not principal.membership.can_see_keys:
            raise APIError(403, "forbidden", "billing members see no API keys")
        keys: QuerySet[APIKey] = apikeys_visible(membership=principal.membership)
    else:
        keys = APIKey.objects.select_related("user", "project").filter(
            organization=principal.organization,
            project_id=principal.api_key.project_id,  # type: ignore[union-attr]
        )
    if project is not None:
        keys = keys.filter(project_id=project)
    meta, rows = paginate(keys, page=page, page_size=page_size)
    return {**meta, "items": [_key_out(k) for k in rows]}


def _key_out(key: APIKey) -> dict:
    return {
        "id": key.pk,
        "name": key.name,
        "display": key.display,
        "kind": key.kind,
        "email": key.user.email if key.user else None,
        "project": {"id": key.project_id, "name": key.project.name},
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


@router.post(
    "/api-keys",
    response={201: IssuedAPIKeyOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    url_name="api_key_create",
    operation_id="accounts_api_api_keys_create",
    summary="Create an API key in a project (owners, admins and the project's admins)",
)
def api_keys_create(request: APIRequest, payload: APIKeyIn):
    """With a person's session token only. The secret is in this answer only."""
    principal = request.auth
    membership = principal.membership
    if membership is None:
        raise APIError(403, "forbidden", "creating keys needs a person's session token")
    if payload.project is None:
        project = projects_visible(membership=membership).filter(is_default=True).first()
    else:
        project = projects_visible(membership=membership).filter(pk=payload.project).first()
    if project is None:
        raise not_found("no such project")
    if not project_keys_manageable(membership=membership, project=project):
        raise APIError(
            403, "forbidden", f"only owners, admins and admins of {project.name} create its keys"
        )
    personal = payload.kind == APIKeyKind.PERSONAL
    try:
        issued = apikey_create(
            org=principal.organization,
            name=payload.name,
            kind=payload.kind,
            user=membership.user if personal else None,
            created_by=membership.user,
            project=project,
        )
    except (ProjectError, ValueError) as exc:
        field = getattr(exc, "field", "") or None
        raise APIError(400, "invalid_body", str(exc), field=field) from None
    return Status(201, {**_key_out(issued.key), "secret": issued.secret})
