"""The alert banner's notifications for the page being drawn (one query, full pages only)."""

from django import template

from alerts.selectors import alert_banner

register = template.Library()


@register.simple_tag(takes_context=True)
def alert_banner_for_request(context) -> list:
    request = context.get("request")
    org = getattr(request, "organization", None)
    user = getattr(request, "user", None)
    if org is None or user is None or not user.is_authenticated:
        return []
    return alert_banner(org=org, user=user)
