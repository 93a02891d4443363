from decimal import Decimal

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError

from accounts.models import APIKeyKind, AuditAction, Project, ProjectRole, Role, User
from core.numbers import decimal_input
from core.text import validate_visible_text


class TypedDecimalField(forms.DecimalField):
    """A decimal field that shows a stored value as a person would type it (50, not
    50.0000000000 nor 1E+2); what the person typed is shown back as typed."""

    def prepare_value(self, value):
        if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
            return decimal_input(value)
        return value


class APIKeyCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What uses it, e.g. 'Lab workstation'",
        validators=[validate_visible_text],
    )
    kind = forms.ChoiceField(
        choices=APIKeyKind.choices,
        initial=APIKeyKind.WORKSPACE,
        help_text="A personal key acts for you; a workspace key for the organization.",
    )
    project = forms.ModelChoiceField(
        queryset=Project.objects.none(),
        required=False,
        empty_label=None,
        help_text="The project the key works for: its usage and limits are the project's.",
    )

    def __init__(self, *args, projects=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if projects is not None:
            self.fields["project"].queryset = projects

    def clean_project(self):
        """Not chosen: the Default project when the person manages it, else their only
        project; someone with several projects must choose."""
        project = self.cleaned_data.get("project")
        if project is not None:
            return project
        projects = list(self.fields["project"].queryset)
        default = next((p for p in projects if p.is_default), None)
        if default is not None:
            return default
        if len(projects) == 1:
            return projects[0]
        raise ValidationError("Choose the project the key works for.")


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=100, validators=[validate_visible_text])
    description = forms.CharField(
        max_length=500, required=False, validators=[validate_visible_text]
    )


class ProjectRateLimitsForm(forms.Form):
    rate_limit_rpm = forms.IntegerField(
        min_value=1, required=False, label="Requests per minute", help_text="Empty: no limit."
    )
    rate_limit_tpm = forms.IntegerField(
        min_value=1, required=False, label="Tokens per minute", help_text="Empty: no limit."
    )


class ProjectGrantForm(forms.Form):
    member = forms.ChoiceField(label="Member", help_text="Members and viewers only.")
    role = forms.ChoiceField(
        choices=ProjectRole.choices, initial=ProjectRole.MEMBER, label="Project role"
    )

    def __init__(self, *args, members: list[tuple[int, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [(str(pk), email) for pk, email in members]


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254, label="Email")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER, label="Role")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, label="Role")


class AcceptSignupForm(forms.Form):
    """A new account for the invited address."""

    full_name = forms.CharField(
        max_length=150, required=False, label="Your name", validators=[validate_visible_text]
    )
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)

    def __init__(self, *args, email: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords differ.")
        elif first:
            try:
                password_validation.validate_password(first, User(email=self.email))
            except ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class AuditFilterForm(forms.Form):
    person = forms.ChoiceField(required=False, label="Person")
    kind = forms.ChoiceField(
        required=False, label="Kind", choices=[("", "All kinds"), *AuditAction.choices]
    )

    def __init__(self, *args, people: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["person"].choices = [("", "Everyone"), *((p, p) for p in people)]
