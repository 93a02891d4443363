"""One form layout for every form of the console: label above the field, help below it,
and each error beside the field, naming it (templates/forms/)."""

from django.forms import BoundField
from django.forms.renderers import TemplatesSetting

_REQUIRED = "This field is required."


class ConsoleBoundField(BoundField):
    @property
    def named_errors(self) -> list[str]:
        """The field's errors, Django's bare "This field is required." naming the field."""
        label = str(self.label or self.name)
        return [f"{label} is required." if e == _REQUIRED else str(e) for e in self.errors]


class ConsoleFormRenderer(TemplatesSetting):
    form_template_name = "forms/form.html"
    field_template_name = "forms/field.html"
    bound_field_class = ConsoleBoundField
