"""Projects and the API keys in them.

    import usage_console_client as console

    console.set_session_token("st-av-…")    # an owner's or admin's, to change projects
    research = console.create_project("Research", description="The lab")
    console.list_api_keys(project=research.id)  # each key with its project
    console.update_project(research.id, rate_limit_rpm=600)  # over all its keys together
    console.update_project(research.id, rate_limit_rpm=None)  # no limit again
    console.update_project(research.id, archived=True)  # its keys get 403 from now on

Every function takes an optional `client` (default: the module's default client).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from usage_console_client.auth import default_client
from usage_console_client.client import Client


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    description: str
    is_default: bool
    archived: bool
    archived_at: datetime | None
    created_at: datetime
    active_keys: int
    rate_limit_rpm: int | None = None  # over all the project's keys together; None: no limit
    rate_limit_tpm: int | None = None

    @classmethod
    def from_json(cls, data: dict) -> "Project":
        known = {k: data.get(k) for k in cls.__dataclass_fields__}
        known["archived_at"] = _time(known["archived_at"])
        known["created_at"] = _time(known["created_at"])
        return cls(**known)


@dataclass(frozen=True)
class APIKeyInfo:
    """An API key as the console lists it (never its secret), with its project."""

    id: int
    name: str
    display: str
    kind: str
    email: str | None
    project_id: int
    project_name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_json(cls, data: dict) -> "APIKeyInfo":
        return cls(
            id=data["id"],
            name=data["name"],
            display=data["display"],
            kind=data["kind"],
            email=data["email"],
            project_id=data["project"]["id"],
            project_name=data["project"]["name"],
            created_at=_time(data["created_at"]),  # type: ignore[arg-type]
            last_used_at=_time(data["last_used_at"]),
            revoked_at=_time(data["revoked_at"]),
        )


def _client(client: Client | None) -> Client:
    return client or default_client()


def _all_pages(client: Client, path: str, params: dict[str, Any]) -> list[dict]:
    return list(client._pages(path, params, None, 500))


def list_projects(*, archived: bool | None = None, client: Client | None = None) -> list[Project]:
    """The projects you see (a member limited to projects: only theirs), Default first."""
    params = {"archived": None if archived is None else str(archived).lower()}
    return [Project.from_json(p) for p in _all_pages(_client(client), "/projects", params)]


def get_project(project_id: int, *, client: Client | None = None) -> Project:
    return Project.from_json(_client(client).request("GET", f"/projects/{project_id}")[2])


def create_project(name: str, *, description: str = "", client: Client | None = None) -> Project:
    """Create a project (an owner's or admin's session token)."""
    body = {"name": name, "description": description}
    return Project.from_json(_client(client).request("POST", "/projects", body=body)[2])


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


# A rate limit left as it is (None removes the limit, so it cannot mean "unchanged").
UNCHANGED: Any = _Unchanged()


def update_project(
    project_id: int,
    *,
    name: str | None = None,
    description: str | None = None,
    archived: bool | None = None,
    rate_limit_rpm: int | None = UNCHANGED,
    rate_limit_tpm: int | None = UNCHANGED,
    client: Client | None = None,
) -> Project:
    """Rename, describe, archive (its keys stop working) or unarchive a project, or set
    its rate limits (a number per minute, None for no limit; left out: unchanged)."""
    body: dict[str, Any] = {
        k: v
        for k, v in {"name": name, "description": description, "archived": archived}.items()
        if v is not None
    }
    for field, value in (("rate_limit_rpm", rate_limit_rpm), ("rate_limit_tpm", rate_limit_tpm)):
        if value is not UNCHANGED:
            body[field] = value
    data = _client(client).request("PATCH", f"/projects/{project_id}", body=body)[2]
    return Project.from_json(data)


def list_api_keys(*, project: int | None = None, client: Client | None = None) -> list[APIKeyInfo]:
    """The API keys of the projects you see, newest first, each with its project."""
    rows = _all_pages(_client(client), "/api-keys", {"project": project})
    return [APIKeyInfo.from_json(k) for k in rows]
