from django import forms

from core.text import validate_visible_text
from usage.limits import MAX_CORES, MAX_MEMORY_GB


class ControllerRegisterForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="e.g. dgx-01: jobs name it as 'controller'",
        validators=[validate_visible_text],
    )
    cores = forms.IntegerField(min_value=1, max_value=MAX_CORES)
    memory_gb = forms.IntegerField(min_value=0, max_value=MAX_MEMORY_GB, label="Memory (GB)")
