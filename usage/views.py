from django.http import HttpResponse
from django.shortcuts import render

from accounts.http import OrgRequest, org_view


@org_view()
def usage_panel(request: OrgRequest) -> HttpResponse:
    return render(request, "usage/panel.html", {"nav": "usage"})
