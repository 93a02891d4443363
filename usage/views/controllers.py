"""Settings pages for controllers (bring-your-own-compute): list, register, new token."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.confirm import Confirmation, confirm_page, shown_once_keep, shown_once_pop
from accounts.http import OrgRequest, org_view
from usage.forms import ControllerRegisterForm
from usage.selectors.records import controllers_of
from usage.services.controllers import controller_register, controller_token_rotate


def _controllers_page(request: OrgRequest, *, form, status=200):
    response = render(
        request,
        "usage/controllers.html",
        {
            "nav": "settings",
            "controllers": controllers_of(org=request.organization),
            "form": form,
            # A token issued by the POST that redirected here, shown this once.
            "issued": shown_once_pop(request, "controller_token"),
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
    """Register a controller; the page it redirects to shows its token this once."""
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
            messages.success(request, f"Registered the controller {issued.controller.name}.")
            return shown_once_keep(
                request,
                redirect("usage:controllers", request.organization.slug),
                "controller_token",
                name=issued.controller.name,
                token=issued.token,
            )
    return _controllers_page(request, form=form, status=400)


@org_view(manage=True)
@require_http_methods(["GET", "POST"])
def controller_rotate(request: OrgRequest, controller_id: int) -> HttpResponse:
    """Issue a new token for a controller (the old one stops working) and show it once."""
    controller = get_object_or_404(controllers_of(org=request.organization), pk=controller_id)
    if request.method == "GET":
        return confirm_page(
            request,
            Confirmation(
                title=f"Issue a new token for \u201c{controller.name}\u201d?",
                consequence=f"The current token (••••{controller.token_last_four}) stops "
                "working at once: the running controller is cut off until it is restarted "
                "with the new token.",
                action="Issue new token",
                back=reverse("usage:controllers", args=[request.organization.slug]),
            ),
        )
    token = controller_token_rotate(controller=controller, actor=request.user)  # type: ignore[arg-type]
    messages.success(
        request, f"Issued a new token for {controller.name}; the old one no longer works."
    )
    return shown_once_keep(
        request,
        redirect("usage:controllers", request.organization.slug),
        "controller_token",
        name=controller.name,
        token=token,
    )
