"""Sections a higher app adds to a project's page (Settings → Projects → a project): the
project's budgets and limits come from spend controls, which accounts may not import
(docs/architecture.md). An app registers a function in its AppConfig.ready; the page
shows what each returns, in order."""

from collections.abc import Callable

from django.http import HttpRequest
from django.utils.safestring import SafeString

from accounts.models import Project

ProjectSection = Callable[[HttpRequest, Project], SafeString]

_sections: list[ProjectSection] = []


def project_section_register(section: ProjectSection) -> None:
    """Add a section to every project's page (once, however often ready() runs)."""
    if section not in _sections:
        _sections.append(section)


def project_page_sections(request: HttpRequest, project: Project) -> list[SafeString]:
    """The registered sections of this project's page, rendered for this request."""
    return [section(request, project) for section in _sections]
