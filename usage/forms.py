from django import forms

from accounts.text import validate_visible_text
from usage.limits import MAX_CORES, MAX_MEMORY_GB


class ControllerRegisterForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="e.g. dgx-01: jobs name it as 'controller'",
        validators=[validate_visible_text],
    )
    cores = forms.IntegerField(min_value=1, max_value=MAX_CORES)
    memory_gb = forms.IntegerField(min_value=0, max_value=MAX_MEMORY_GB, label="Memory (GB)")


class ExploreForm(forms.Form):
    """Usage → Explore's parameters, read from the query string (every state is a URL).

    `range` is a quick pick (today … last 90 days) that sets start and end; "custom"
    uses the two dates as given, in the organization's zone.
    """

    range = forms.ChoiceField(required=False)
    start = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
    )
    end = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
    )
    metric = forms.ChoiceField(required=False)
    group_by = forms.ChoiceField(required=False, label="Group by")
    bucket = forms.ChoiceField(required=False, label="Granularity")

    def __init__(self, data, *, choices: dict, options: dict, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["range"].choices = [("custom", "Custom"), *choices["range"]]
        self.fields["metric"].choices = choices["metric"]
        self.fields["group_by"].choices = [("", "None"), *choices["group_by"]]
        self.fields["bucket"].choices = choices["bucket"]
        self.filter_names = []
        for dim, label in choices["group_by"]:
            self.fields[dim] = forms.MultipleChoiceField(
                required=False,
                label=label,
                choices=[(o.value, o.label) for o in options.get(dim, [])],
                widget=forms.CheckboxSelectMultiple,
            )
            self.filter_names.append(dim)

    def filter_fields(self):
        return [self[name] for name in self.filter_names]
