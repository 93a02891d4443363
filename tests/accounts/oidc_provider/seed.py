"""Fill the test provider's database: its people and the clients the tests use.
Run as `python -m tests.accounts.oidc_provider.seed REDIRECT_URI...` with the provider's
settings; prints nothing (the tests know the names below)."""

import sys

import django

django.setup()

from allauth.account.models import EmailAddress  # noqa: E402
from allauth.idp.oidc.models import Client  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402

PASSWORD = "provider-password"
PEOPLE = {
    "ada": "ada@acme.example",
    "bob": "bob@acme.example",
    "cy": "cy@acme.example",  # removed at the provider by one test
    "eve": "eve@elsewhere.example",
}
CLIENTS = {"console": "console-secret", "other-app": "other-app-secret"}


def main(redirect_uris: list[str]) -> None:
    for username, email in PEOPLE.items():
        user = User.objects.create_user(username=username, email=email, password=PASSWORD)
        EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
    for client_id, secret in CLIENTS.items():
        client = Client(id=client_id, name=client_id, skip_consent=True)
        client.set_secret(secret)
        client.set_scopes(["openid", "email", "profile"])
        client.set_redirect_uris(redirect_uris)
        client.save()


if __name__ == "__main__":
    main(sys.argv[1:])
