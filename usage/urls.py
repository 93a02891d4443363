from django.urls import path

from usage import views

app_name = "usage"

urlpatterns = [
    path("", views.usage_panel, name="panel"),
]
