"""Projects: named parts of an organization that own API keys (and, through them, usage),
and the grants that limit a member to some projects (docs/projects.md)."""

from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models.organizations import Membership, Organization

DEFAULT_PROJECT_NAME = "Default"


class Project(models.Model):
    """A team's or a product's part of the organization. Every organization has exactly
    one Default project, which cannot be archived; an archived project's keys stop
    working and its history stays."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="projects"
    )
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True, default="")
    is_default = models.BooleanField(default=False)
    archived_at = models.DateTimeField(null=True, blank=True)
    # The project's rate limits for authorize, over all its keys together (the key's own
    # apply too, the tightest first: docs/spend-controls.md); empty means none.
    rate_limit_rpm = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_tpm = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-is_default", "name", "id"]
        constraints = [
            # "Research" and "research" are one name to a person reading a list.
            models.UniqueConstraint(
                Lower("name"), "organization", name="project_name_unique_per_org"
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(is_default=True),
                name="one_default_project_per_org",
            ),
            models.CheckConstraint(
                condition=models.Q(is_default=False) | models.Q(archived_at__isnull=True),
                name="default_project_never_archived",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class ProjectRole(models.TextChoices):
    ADMIN = "admin", "Project admin"
    MEMBER = "member", "Project member"
    VIEWER = "viewer", "Project viewer"


class ProjectMembership(models.Model):
    """A limited member's access to one project, with a project role. A membership with
    `limited_to_projects` sees only the projects it has grants for."""

    # The project's organization, carried so the table shards by organization like every
    # tenant table (docs/scaling.md).
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="project_grants"
    )
    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="project_grants"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="grants")
    role = models.CharField(max_length=10, choices=ProjectRole.choices, default=ProjectRole.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project__name", "membership__user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "membership", "project"],
                name="one_grant_per_member_and_project",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=["admin", "member", "viewer"]),
                name="project_role_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.membership.user} in {self.project} ({self.role})"
