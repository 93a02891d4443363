from django import forms


class ControllerRegisterForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="e.g. dgx-01: jobs name it as 'controller'")
    cores = forms.IntegerField(min_value=1, max_value=1_000_000)
    memory_gb = forms.IntegerField(min_value=0, max_value=1_000_000, label="Memory (GB)")
