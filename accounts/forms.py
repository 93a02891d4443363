from django import forms

from accounts.models import APIKeyKind
from accounts.text import validate_visible_text


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
