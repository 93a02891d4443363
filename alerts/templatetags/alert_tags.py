"""The alert banner for the page being drawn: the newest notification and how many more."""

from django import template

from accounts.projects import project_ids_visible
from alerts.selectors import AlertBanner, alert_banner

register = template.Library()


@register.simple_tag(takes_context=True)
def alert_banner_for_request(context) -> AlertBanner | None:
    request = context.get("request")
    org = getattr(request, "organization", None)
    user = getattr(request, "user", None)
    if org is None or user is None or not user.is_authenticated:
        return None
    membership = getattr(request, "membership", None)
    # A member limited to projects hears only of their projects' rules.
    project_ids = project_ids_visible(membership=membership) if membership else None
    return alert_banner(org=org, user=user, project_ids=project_ids)
