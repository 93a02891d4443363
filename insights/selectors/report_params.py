"""A report's parameters as Explore and the usage report API receive them: filters
resolved against the organization's own keys, controllers, projects and models, and the
options the page offers.

`project_ids` is what the requester may see (accounts/projects.py `project_ids_visible`;
None: every project of the organization): a key, controller or project of another
project is refused like another organization's, and the page offers only theirs."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from accounts.models import APIKey, Organization, Project
from billing.models import PriceModel
from core.errors import FieldError
from insights.selectors.report_sources import (
    DIMENSIONS,
    KIND_LABELS,
)
from rollups.models import (
    QueryBucket,
    QueryDaily,
    QueryDimension,
)
from usage.models import Controller

# --- Parameters, as the page and the API receive them -----------------------------------


class ReportParamError(FieldError):
    """A bad report parameter: `field` names it as the caller sent it."""


MAX_FILTER_VALUES = 50


def report_filters_resolve(
    *,
    org: Organization,
    filters: dict[str, list[str]],
    field_name=lambda dim: dim,
    project_ids: frozenset[int] | None = None,
) -> dict[str, list]:
    """The filters as the engine takes them (ids for models, keys, controllers and
    projects), checked against the organization and the projects the requester sees:
    another organization's (or an unseen project's) key, controller or project, an
    unknown model or kind is a ReportParamError naming `field_name(dim)`."""
    resolved: dict[str, list] = {}
    for dim, raw_values in filters.items():
        values = [v.strip() for v in raw_values if v and v.strip()]
        if not values:
            continue
        name = field_name(dim)
        if not all(_storable(v) for v in values):
            raise ReportParamError(name, "must not contain NUL or unpaired surrogate characters")
        if dim not in DIMENSIONS:
            raise ReportParamError(name, f"unknown dimension; one of {', '.join(DIMENSIONS)}")
        if len(values) > MAX_FILTER_VALUES:
            raise ReportParamError(name, f"at most {MAX_FILTER_VALUES} values")
        resolved[dim] = _filter_values(org, dim, set(values), name, project_ids)
    return resolved


def _storable(text: str) -> bool:
    """Text every database can hold (PostgreSQL's text refuses NUL; UTF-8, surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _ids(values: set[str], name: str) -> set[int]:
    try:
        return {int(v) for v in values}
    except ValueError:
        raise ReportParamError(name, "must be ids (whole numbers)") from None


def _in_projects(queryset, project_ids: frozenset[int] | None):
    return queryset if project_ids is None else queryset.filter(project_id__in=project_ids)


# Dimensions whose values are ids of the organization's objects: (model, what the error
# calls one, the lookup of its project).
_ID_DIMENSIONS = {
    "api_key": (APIKey, "API key", "project_id__in"),
    "controller": (Controller, "controller", "project_id__in"),
    "project": (Project, "project", "pk__in"),
}


def _filter_values(
    org: Organization, dim: str, values: set[str], name: str, project_ids: frozenset[int] | None
) -> list:
    if dim == "kind":
        unknown = values - set(KIND_LABELS)
        if unknown:
            raise ReportParamError(name, f"one of {', '.join(KIND_LABELS)}")
        return sorted(values)
    if dim == "model":
        found = dict(PriceModel.objects.filter(name__in=values).values_list("name", "pk"))
        if len(found) != len(values):
            raise ReportParamError(name, f"unknown model {sorted(values - set(found))[0]!r}")
        return sorted(found.values())
    if dim in _ID_DIMENSIONS:
        model, noun, in_projects = _ID_DIMENSIONS[dim]
        ids = _ids(values, name)
        rows = model._default_manager.filter(organization=org, pk__in=ids)
        if project_ids is not None:
            # Another project's than the requester sees: refused as another
            # organization's is (its name or existence is not theirs to learn).
            rows = rows.filter(**{in_projects: project_ids})
        found_ids = set(rows.values_list("pk", flat=True))
        if found_ids != ids:
            raise ReportParamError(name, f"no such {noun} in this organization")
        return sorted(found_ids)
    if any(len(v) > 254 for v in values):
        raise ReportParamError(name, "values are at most 254 characters")
    return sorted(values)


@dataclass(frozen=True)
class FilterOption:
    value: str
    label: str


def report_filter_options(
    *, org: Organization, now: datetime, project_ids: frozenset[int] | None = None
) -> dict[str, list[FilterOption]]:
    """What the page offers to filter on: this organization's keys, controllers,
    projects, members and endpoints (from the rollups and the last two days' bucket
    aggregates), every model, the kinds; of the projects in `project_ids` only, when
    given."""
    keys = [
        FilterOption(str(k.pk), f"{k.name} ({k.display})")
        for k in _in_projects(APIKey.objects.filter(organization=org), project_ids).order_by(
            "name", "pk"
        )
    ]
    controllers = [
        FilterOption(str(pk), name)
        for pk, name in _in_projects(Controller.objects.filter(organization=org), project_ids)
        .order_by("name")
        .values_list("pk", "name")
    ]
    projects = Project.objects.filter(organization=org)
    if project_ids is not None:
        projects = projects.filter(pk__in=project_ids)
    project_options = [
        FilterOption(str(pk), name)
        for pk, name in projects.order_by("-is_default", "name").values_list("pk", "name")
    ]
    names = PriceModel.objects.order_by("name").values_list("name", flat=True)
    models = [FilterOption(n, n) for n in names]
    since = now - timedelta(days=2)

    def distinct(column: str, dimension: str) -> list[FilterOption]:
        rolled = _in_projects(
            QueryDaily.objects.filter(organization=org, dimension=dimension), project_ids
        ).exclude(**{column: ""})
        recent = _in_projects(
            QueryBucket.objects.filter(organization=org, dimension=dimension, bucket__gte=since),
            project_ids,
        ).exclude(**{column: ""})
        names = set(rolled.values_list(column, flat=True).distinct()[:500])
        names |= set(recent.values_list(column, flat=True).distinct()[:500])
        return [FilterOption(n, n) for n in sorted(names)]

    return {
        "model": models,
        "api_key": keys,
        "member": distinct("member", QueryDimension.MEMBER),
        "endpoint": distinct("endpoint", QueryDimension.ENDPOINT),
        "controller": controllers,
        "kind": [FilterOption(k, label) for k, label in KIND_LABELS.items()],
        "project": project_options,
    }
