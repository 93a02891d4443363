"""Settings pages for controllers (bring-your-own-compute): list, register, new token."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from accounts.http import OrgRequest, org_view
from usage.forms import ControllerRegisterForm
from usage.selectors.records import controllers_of
from usage.services.controllers import controller_register, controller_token_rotate


def _controllers_page(request: OrgRequest, *, form, issued=None, token=None, status=200):
    response = render(
        request,
        "usage/controllers.html",
        {
            "nav": "settings",
            "controllers": controllers_of(org=request.organization),
            "form": form,
            "issued": issued,
            "token": token,
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"  # may carry a token shown once
    return response


@org_view()
def controllers(request: OrgRequest) -> HttpResponse:
    """Controllers (BYOC): status from the last heartbeat, capacity; managers register."""
    return _controllers_page(request, form=ControllerRegisterForm())


@org_view(manage=True)
@require_POST
def controller_create(request: OrgRequest) -> HttpResponse:
    """Register a controller and show its token this once."""
    form = ControllerRegisterForm(request.POST)
    if form.is_valid():
        try:
            issued = controller_register(
                org=request.organization,
                actor=request.user,  # type: ignore[arg-type]
                **form.cleaned_data,
            )
        except ValueError as exc:
            form.add_error("name", str(exc))
        else:
            return _controllers_page(
                request, form=ControllerRegisterForm(), issued=issued.controller, token=issued.token
            )
    return _controllers_page(request, form=form, status=400)


@org_view(manage=True)
@require_POST
def controller_rotate(request: OrgRequest, controller_id: int) -> HttpResponse:
    """Issue a new token for a controller (the old one stops working) and show it once."""
    controller = get_object_or_404(controllers_of(org=request.organization), pk=controller_id)
    token = controller_token_rotate(controller=controller, actor=request.user)  # type: ignore[arg-type]
    return _controllers_page(request, form=ControllerRegisterForm(), issued=controller, token=token)
