"""The explorer's labels and figures in its templates."""

from decimal import Decimal

from django import template

from billing.templatetags.billing_tags import credits
from insights.selectors.explorer import UsageReport
from insights.selectors.report_sources import DIMENSIONS, KIND_LABELS, METRICS
from insights.templatetags.usage_format import grouped
from usage.windows import BUCKET_LABELS

register = template.Library()


@register.filter
def metric_label(metric: str) -> str:
    return METRICS.get(metric, metric)


@register.filter
def dimension_labels(names: str) -> str:
    """ "model, api_key" as "Model, API key"."""
    return ", ".join(DIMENSIONS.get(n.strip(), n.strip()) for n in names.split(","))


@register.filter
def bucket_label(bucket: str) -> str:
    return BUCKET_LABELS.get(bucket, bucket)


@register.simple_tag
def metric_value(report: UsageReport, value: Decimal) -> str:
    """Credits as credits, counts whole, hours and core-hours to two places."""
    if report.metric == "credits":
        return credits(value)
    if report.integral:
        return grouped(value)
    return grouped(value, 2)


@register.filter
def kinds_sentence(kinds) -> str:
    """("query", "job") as "queries and jobs": what a report adds up, in words."""
    words = [KIND_LABELS.get(k, k).lower() for k in kinds]
    if not words:
        return "no records (no kind of record has this metric with these filters)"
    if len(words) == 1:
        return f"{words[0]} only"
    return ", ".join(words[:-1]) + " and " + words[-1]
