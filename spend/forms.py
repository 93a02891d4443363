"""Forms of spend controls' pages: a budget, and the estimator (a GET: every state a URL)."""

from django import forms

from accounts.forms import TypedDecimalField
from spend.estimate import DEFAULT_MAX_OUTPUT_TOKENS, MAX_MESSAGE_CHARS, MAX_OUTPUT_TOKENS
from spend.models import BudgetPeriod, BudgetScope


class BudgetForm(forms.Form):
    scope = forms.ChoiceField(choices=BudgetScope.choices)
    api_key = forms.TypedChoiceField(
        choices=(),
        coerce=int,
        required=False,
        empty_value=None,
        label="API key",
        help_text="For an API key's budget: the key.",
    )
    member = forms.EmailField(required=False, help_text="For a member's budget: their email.")
    project = forms.TypedChoiceField(
        choices=(),
        coerce=int,
        required=False,
        empty_value=None,
        help_text="For a project's budget: the project.",
    )
    period = forms.ChoiceField(choices=BudgetPeriod.choices, initial=BudgetPeriod.MONTH)
    soft_limit = TypedDecimalField(min_value=0, decimal_places=6, label="Soft level (alert)")
    hard_limit = TypedDecimalField(
        min_value=0, decimal_places=6, required=False, label="Hard level (refuse)"
    )

    def __init__(self, *args, keys=(), projects=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["api_key"].choices = [("", "—")] + [(k.pk, k.name) for k in keys]
        self.fields["project"].choices = [("", "—")] + [(p.pk, p.name) for p in projects]


class BudgetLevelsForm(forms.Form):
    soft_limit = TypedDecimalField(min_value=0, decimal_places=6)
    hard_limit = TypedDecimalField(min_value=0, decimal_places=6, required=False)


class EstimateForm(forms.Form):
    model = forms.ChoiceField(choices=())
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        max_length=MAX_MESSAGE_CHARS,
        help_text=(
            'A prompt, or messages as JSON: [{"role": "user", "content": "…"}]. '
            "Each message costs 4 tokens of overhead."
        ),
    )
    max_output_tokens = forms.IntegerField(
        min_value=0, max_value=MAX_OUTPUT_TOKENS, initial=DEFAULT_MAX_OUTPUT_TOKENS
    )
    member = forms.CharField(required=False, max_length=254, help_text="Whose budgets apply.")
    api_key = forms.TypedChoiceField(
        choices=(), coerce=int, required=False, empty_value=None, label="API key"
    )

    def __init__(self, *args, models=(), keys=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [(m.name, m.name) for m in models]
        self.fields["api_key"].choices = [("", "—")] + [(k.pk, k.name) for k in keys]
