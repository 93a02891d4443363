"""Controllers (bring-your-own-compute): registration, tokens and heartbeats."""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.credentials import secret_generate, secret_hash
from accounts.models import AuditAction, Organization, Project, User
from accounts.projects import project_default_for
from core.text import invisible_character, invisible_character_message
from usage.limits import MAX_CORES, MAX_MEMORY_GB
from usage.models import Controller

CONTROLLER_TOKEN_PREFIX = "ctl"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True)
class IssuedController:
    controller: Controller
    token: str  # shown once; only its hash is stored


@transaction.atomic
def controller_register(
    *,
    org: Organization,
    name: str,
    cores: int,
    memory_gb: int,
    token: str | None = None,
    actor: User | None = None,
    project: Project | None = None,
) -> IssuedController:
    """Register a controller and return its token once (`token` only for the demo).

    It belongs to `project` (the Default one when none is given) for good: jobs sent
    without a key on it are that project's (docs/projects.md)."""
    name = name.strip()
    if not name:
        raise ValueError("A controller needs a name")
    if cores < 1 or memory_gb < 0:
        raise ValueError("Cores must be at least 1 and memory not negative")
    if cores > MAX_CORES or memory_gb > MAX_MEMORY_GB:
        raise ValueError(f"At most {MAX_CORES:,} cores and {MAX_MEMORY_GB:,} GB of memory")
    if (refused := invisible_character(name)) is not None:
        raise ValueError("The name " + invisible_character_message(refused))
    if Controller.objects.filter(organization=org, name=name).exists():
        raise ValueError(f"There is already a controller named {name!r}")
    if project is None:
        project = project_default_for(org=org)
    elif project.organization_id != org.pk:
        raise ValueError("The project is not one of this organization's")
    token = token or secret_generate(prefix=CONTROLLER_TOKEN_PREFIX)
    controller = Controller.objects.create(
        organization=org,
        project=project,
        name=name,
        cores=cores,
        memory_gb=memory_gb,
        token_hash=secret_hash(token),
        token_last_four=token[-4:],
    )
    audit_record(
        org=org,
        actor=actor,
        action=AuditAction.CONTROLLER_CREATED,
        summary=f"Registered controller {name} ({cores:,} cores, {memory_gb:,} GB)",
        target=f"controller:{controller.pk}",
    )
    return IssuedController(controller=controller, token=token)


@transaction.atomic
def controller_token_rotate(*, controller: Controller, actor: User | None = None) -> str:
    """Give the controller a new token (the old one stops working) and return it once."""
    token = secret_generate(prefix=CONTROLLER_TOKEN_PREFIX)
    controller.token_hash = secret_hash(token)
    controller.token_last_four = token[-4:]
    controller.save(update_fields=["token_hash", "token_last_four"])
    audit_record(
        org=controller.organization,
        actor=actor,
        action=AuditAction.CONTROLLER_TOKEN_ROTATED,
        summary=f"Issued a new token for controller {controller.name} (…{token[-4:]})",
        target=f"controller:{controller.pk}",
    )
    return token


@transaction.atomic
def controller_heartbeat(
    *,
    controller: Controller,
    at: datetime | None = None,
    cores: int | None = None,
    memory_gb: int | None = None,
) -> Controller:
    """Record that the controller is alive (and its capacity, when it reports one, within
    usage/limits.py's bounds: ValueError past them)."""
    if (cores is not None and not 1 <= cores <= MAX_CORES) or (
        memory_gb is not None and not 0 <= memory_gb <= MAX_MEMORY_GB
    ):
        raise ValueError(f"cores 1 to {MAX_CORES:,}, memory_gb 0 to {MAX_MEMORY_GB:,}")
    controller.last_heartbeat_at = at or timezone.now()
    fields = ["last_heartbeat_at"]
    if cores is not None:
        controller.cores = cores
        fields.append("cores")
    if memory_gb is not None:
        controller.memory_gb = memory_gb
        fields.append("memory_gb")
    controller.save(update_fields=fields)
    return controller
