"""Emails whose links survive copy and paste.

A text body with a line over 78 characters (any link with a signed token) is sent
quoted-printable by default, its long lines broken with `=` at the end: a person copying
the link from the raw message, or from a console that prints it (the embedded default's
console backend), gets a broken link. Allowing lines up to SMTP's limit of 998 keeps
such bodies 7bit (8bit when not ASCII), lines whole.
"""

import email.policy

from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.core.mail import EmailMessage
from django.template import loader
from django.urls import reverse

SMTP_LINE_LIMIT = 998


class LinkSafeEmail(EmailMessage):
    """An EmailMessage whose text lines (and so links) are sent unbroken."""

    def message(self, *, policy=email.policy.default):
        return super().message(policy=policy.clone(max_line_length=SMTP_LINE_LIMIT))


def site_link(viewname: str, *args: object) -> str:
    """An absolute link to a console page, for an email: SITE_URL plus the page's path."""
    return settings.SITE_URL.rstrip("/") + reverse(viewname, args=args)


class LinkSafePasswordResetForm(PasswordResetForm):
    """Django's password reset form, its email sent with the reset link on one line."""

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        LinkSafeEmail(subject, body, from_email, [to_email]).send()
