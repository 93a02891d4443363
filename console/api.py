"""The program-facing API, mounted at /api/v1/: the one django-ninja API object that
mounts each app's endpoints (usage's ingestion, jobs, heartbeats and reads, billing's
credits, accounts' session tokens and audit log), with its OpenAPI schema at
/api/v1/openapi.json and Swagger UI at /api/v1/docs (served from static files)."""

from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern
from ninja import NinjaAPI, Swagger

from accounts import api as accounts_api
from accounts import projects_api as accounts_projects_api
from billing import api as billing_api
from core.api import ErrorOut, error, install_exception_handlers
from ingest.api import ingest as usage_ingest_api
from insights.api import reads as usage_reads_api
from insights.api import report as usage_report_api
from spend.api import spend as usage_spend_api
from spend.api.ratelimit import RATE_LIMIT_HEADERS, PrincipalRateLimit, rate_limit_headers

app_name = "api"

DESCRIPTION = """\
The Usage Console's API: send usage, read what the console shows.

**Authentication.** `Authorization: Bearer <secret>` with either an **API key**
(`sk-av-…`, Settings → API keys; the only credential that may send usage) or an
**account session token** (`st-av-…`, Settings → Session tokens, or
`POST /api/v1/auth/session-tokens` while logged in). A session token is valid for 30 days
from issue or last renewal (`POST /api/v1/auth/session-token/renew`); an expired one is
a 401 with `"error": "session_token_expired"`. Everything is scoped to the credential's
organization: another organization's id is a 404.

**Rate limits.** Every answer to an authenticated request carries
`X-RateLimit-{Limit,Remaining,Reset}-RPM` (requests per minute) and `-TPM` (tokens per
minute; Reset is a Unix time). Over the limit: 429 with `Retry-After` seconds.

**Pagination.** Lists are paged by page number: `page` (from 1) and `page_size`
(default 100, at most 500); answers give `count`, `pages`, `next_page` and
`previous_page`. A page past the last is a 400 naming `page`.

**Errors.** JSON `{"error": code, "message": text, "field": name}`; every bad parameter
or body field is a 400 naming it.

**Figures** (credits, tokens, runtime) equal what the usage panel and the main page show
for the same range. Credits are decimal strings. Ranges are half-open [start, end).
"""


# An operation's id is the name generated clients give its method, so it is part of the
# contract: ids name the module each endpoint was first published from, wherever the
# endpoint lives now.
PUBLISHED_MODULES = {
    "ingest.api.ingest": "usage.api",
    "insights.api.reads": "usage.api_read",
    "insights.api.report": "usage.api_report",
    "spend.api.spend": "usage.api.spend",
    "billing.api": "usage.api_read",
    "accounts.api": "usage.api_read",
}
PUBLISHED_MODULE_OF_VIEW = {"audit_events_list": "usage.api_audit"}


class ConsoleAPI(NinjaAPI):
    """Adds what every operation shares to the schema: the errors, the 401/429 answers
    and the rate-limit headers (the views put them on every authenticated answer)."""

    def get_openapi_operation_id(self, operation: Any) -> str:
        name = operation.view_func.__name__
        module = operation.view_func.__module__
        module = PUBLISHED_MODULE_OF_VIEW.get(name) or PUBLISHED_MODULES.get(module, module)
        return f"{module}_{name}".replace(".", "_")

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):  # type: ignore[override]
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("ErrorOut", ErrorOut.model_json_schema())
        error_ref = {"$ref": "#/components/schemas/ErrorOut"}

        def answer(description: str, **extra: Any) -> dict:
            return {
                "description": description,
                "content": {"application/json": {"schema": error_ref}},
                **extra,
            }

        rate_headers = {
            name: {"required": True, "schema": {"type": "integer"}, "description": name}
            for name in RATE_LIMIT_HEADERS
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                # ninja keys its own answers by int; one key per status, as strings.
                responses = {str(code): answer for code, answer in operation["responses"].items()}
                operation["responses"] = responses
                parameters = operation.get("parameters") or []
                if parameters or operation.get("requestBody"):
                    responses.setdefault("400", answer("A bad parameter or body field (named)"))
                if any(p["in"] == "path" or p["name"] == "org_id" for p in parameters):
                    responses.setdefault("404", answer("Not in your organization"))
                security = operation.get("security") or []
                if not security:
                    continue
                schemes = {name for entry in security for name in entry}
                responses.setdefault("401", answer("Missing, unknown, revoked or expired"))
                if schemes <= {"ControllerTokenAuth"} or schemes == {"SessionAuth"}:
                    continue  # heartbeats and the browser's token issue are not metered
                responses.setdefault(
                    "429", answer("Over the rate limit: retry after Retry-After seconds")
                )
                responses["429"].setdefault("headers", {})["Retry-After"] = {
                    "required": True,
                    "schema": {"type": "integer"},
                    "description": "Seconds until the limit resets",
                }
                for code, response in responses.items():
                    if code != "401":
                        response.setdefault("headers", {}).update(rate_headers)
        return schema


api = ConsoleAPI(
    title="Usage Console API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    docs=Swagger(settings={"validatorUrl": None, "persistAuthorization": True}),
    throttle=[PrincipalRateLimit()],
)
install_exception_handlers(api)
api.add_decorator(rate_limit_headers, mode="view")
# Each app owns its endpoints; the order here is the schema's order.
api.add_router("", usage_ingest_api.router)
api.add_router("/account", billing_api.account)
api.add_router("/account", usage_reads_api.account)
api.add_router("/usage", usage_reads_api.usage)
api.add_router("/usage", usage_report_api.router)
api.add_router("/auth", accounts_api.sessions)
api.add_router("", accounts_api.audit)
api.add_router("", accounts_projects_api.router)
api.add_router("", usage_spend_api.router)


def _json_method_not_allowed(view: Any) -> Any:
    """django-ninja answers a wrong method in plain text; this API answers in JSON."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and "json" not in response.get("Content-Type", ""):
            allowed = response.get("Allow", "")
            response = error(405, "method_not_allowed", f"use {allowed}")
            response["Allow"] = allowed
        return response

    return wrapper


def _patterns() -> list:
    patterns = []
    for pattern in api.urls[0]:
        if isinstance(pattern, URLPattern):
            pattern = URLPattern(
                pattern.pattern,
                _json_method_not_allowed(pattern.callback),
                pattern.default_args,
                pattern.name,
            )
        patterns.append(pattern)
    return patterns


urlpatterns = _patterns()
