"""The console's URLs plus one view that fails, for the 500 page's tests."""

from django.urls import path

from console.urls import urlpatterns as console_patterns


def boom(request):
    raise RuntimeError("the disk caught fire")


urlpatterns = [path("boom/", boom), path("api/v1/boom/", boom), *console_patterns]
handler500 = "console.views.server_error"
