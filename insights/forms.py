from django import forms


class ExploreForm(forms.Form):
    """Usage → Explore's parameters, read from the query string (every state is a URL).
    Dates are in the organization's zone; the quick picks are links that set them."""

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
