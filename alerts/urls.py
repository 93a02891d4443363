from django.urls import path

from alerts import views

app_name = "alerts"

urlpatterns = [
    path("", views.alerts_page, name="rules"),
    path("new/", views.rule_new, name="rule_new"),
    path("preview/", views.rule_preview, name="rule_preview"),
    path("<int:rule_id>/", views.rule_edit, name="rule_edit"),
    path("<int:rule_id>/delete/", views.rule_delete, name="rule_delete"),
    path("notifications/", views.notifications, name="notifications"),
    path(
        "notifications/<int:notification_id>/dismiss/",
        views.notification_dismiss,
        name="notification_dismiss",
    ),
    path("webhook-secret/rotate/", views.webhook_secret_rotate, name="webhook_secret_rotate"),
]
