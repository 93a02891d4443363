from django.http import HttpRequest


def lockout_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The name django-axes counts failures against: the email, lower-cased."""
    username = (credentials or {}).get("username") or request.POST.get("username")
    return username.strip().lower() if username else None
