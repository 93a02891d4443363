"""What a usage debit charged: the ledger links each debit here ("why did my balance drop")."""

from django.http import Http404, HttpResponse
from django.shortcuts import render

from accounts.http import OrgRequest, org_view
from usage.selectors.records import job_charges, usage_batch_charges, usage_batch_gap
from usage.services.retention import retention_notice


@org_view()
def batch_charges(request: OrgRequest, batch_id: int) -> HttpResponse:
    found = usage_batch_charges(org=request.organization, batch_id=batch_id)
    if found is None:
        raise Http404("No such batch")
    batch, charges = found
    # A batch of a month retention dropped has no records left to list: say so.
    notice = None if charges.lines else retention_notice(start=batch.received_at)
    gap = usage_batch_gap(org=request.organization, batch=batch, charges=charges)
    context = {
        "nav": "finance",
        "batch": batch,
        "charges": charges,
        "detail_notice": notice,
        "gap": None if notice else gap,
    }
    return render(request, "usage/charges.html", {**context, "title": f"Usage batch {batch.pk}"})


@org_view()
def job_charge(request: OrgRequest, job_pk: int) -> HttpResponse:
    found = job_charges(org=request.organization, job_pk=job_pk)
    if found is None:
        raise Http404("No such job")
    job, charges = found
    return render(
        request,
        "usage/charges.html",
        {"nav": "finance", "job": job, "charges": charges, "title": f"Job {job.client_id}"},
    )
