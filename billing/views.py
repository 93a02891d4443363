from django.http import HttpResponse
from django.shortcuts import render

from console.http import OrgRequest, org_view


@org_view()
def finance_dashboard(request: OrgRequest) -> HttpResponse:
    return render(request, "billing/dashboard.html", {"nav": "finance"})
