"""The HTTP client: one `Client` with every call; the module functions use a default one.

Standard library only (urllib). Reads use the session token when one is set, else the
API key; usage records and jobs always go with the API key. A 429 for the rate limit is
retried after its Retry-After, a bounded number of times, then raised as RateLimitError.
"""

import json
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

from usage_console_client.errors import (
    APIConnectionError,
    ConfigurationError,
    PaymentDeclinedError,
    error_for,
)
from usage_console_client.models import (
    Account,
    CreditBalance,
    IngestResult,
    Job,
    LLMSummary,
    LLMUsage,
    MatchingUsage,
    ModelQueries,
    ModelRuntime,
    MonthToDateUsage,
    Payment,
    RateLimit,
    SessionTokenInfo,
    UsageReport,
    WorkerSession,
)

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_PAGE_SIZE = 100
USER_AGENT = "usage-console-client/1"


def _date_param(value: str | date | datetime | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


class Client:
    """A connection to one console.

    base_url: where the console runs; api_key: a workspace or personal key (sends usage);
    session_token: an account session token (reads, add_credits). max_retries and
    max_retry_wait bound the waiting on 429s; timeout is per request, in seconds.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        session_token: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        max_retry_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.session_token = session_token
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.sleep = sleep
        self.last_rate_limit: RateLimit | None = None

    # --- transport -------------------------------------------------------------------

    def _credential(self, use: str) -> str:
        if use == "api_key":
            secret = self.api_key
            missing = "set an API key (set_api_key) to send usage"
        elif use == "session":
            secret = self.session_token
            missing = "set a session token (set_session_token)"
        else:
            secret = self.session_token or self.api_key
            missing = "set a session token (set_session_token) or an API key (set_api_key)"
        if not secret:
            raise ConfigurationError(missing)
        return secret

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        use: str = "read",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """Send one call to /api/v1<path>; returns (status, headers, JSON) or raises."""
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None}, doseq=True)
        url = f"{self.base_url}/api/v1{path}" + (f"?{query}" if query else "")
        data = None if body is None else json.dumps(body, default=str).encode()
        sent = {
            "Authorization": f"Bearer {self._credential(use)}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **({"Content-Type": "application/json"} if data is not None else {}),
            **(headers or {}),
        }
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"the base URL must be http(s): {self.base_url!r}")
        attempt = 0
        while True:
            request = Request(url, data, sent, method=method)  # noqa: S310 - http(s) only
            status, answer_headers, payload = self._send(request)
            self.last_rate_limit = RateLimit.from_headers(answer_headers)
            if status < 400:
                return status, answer_headers, payload
            error = error_for(status, payload, answer_headers)
            wait = getattr(error, "retry_after", None)
            if (
                status == 429
                and error.code == "rate_limited"
                and attempt < self.max_retries
                and wait is not None
                and wait <= self.max_retry_wait
            ):
                attempt += 1
                self.sleep(wait)
                continue
            raise error

    def _send(self, request: Request) -> tuple[int, dict[str, str], Any]:
        try:
            with urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) URL
                status, headers, raw = response.status, dict(response.headers), response.read()
        except HTTPError as exc:
            status, headers, raw = exc.code, dict(exc.headers or {}), exc.read()
        except (URLError, TimeoutError, ConnectionError) as exc:
            raise APIConnectionError(f"could not reach {request.full_url}: {exc}") from exc
        if not raw:
            return status, headers, None
        try:
            return status, headers, json.loads(raw)
        except ValueError:
            return status, headers, raw.decode(errors="replace")

    def _get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)[2]

    def _pages(
        self, path: str, params: dict[str, Any], page: int | None, page_size: int
    ) -> Iterator[dict]:
        """The items of one page, or of every page when page is None."""
        number = page or 1
        while True:
            data = self._get(path, **params, page=number, page_size=page_size)
            yield from data["items"]
            if page is not None or data["next_page"] is None:
                return
            number = data["next_page"]

    # --- account ---------------------------------------------------------------------

    def get_account(self) -> Account:
        """The organization and the kind of credential in use."""
        return Account.from_json(self._get("/account"))

    def get_credits_balance(self) -> CreditBalance:
        """Available credits, estimated remaining usage time and last payment date."""
        return CreditBalance.from_json(self._get("/account/credits"))

    def add_credits(
        self,
        amount: int | float | Decimal | str,
        *,
        idempotency_key: str | None = None,
        payment_method_id: int | None = None,
        card: dict[str, Any] | None = None,
    ) -> Payment:
        """Buy `amount` credits with the organization's saved card (or `card`). Retrying
        with the same idempotency_key never charges twice (a fresh key is drawn when none
        is given). Raises PaymentDeclinedError (with .payment) when the card is declined."""
        body: dict[str, Any] = {"credits": str(amount)}
        if payment_method_id is not None:
            body["payment_method_id"] = payment_method_id
        if card is not None:
            body["card"] = card
        key = idempotency_key or uuid.uuid4().hex
        try:
            _, headers, data = self.request(
                "POST", "/account/credits", body=body, headers={"Idempotency-Key": key}
            )
        except PaymentDeclinedError as exc:
            if isinstance(exc.body, dict) and "payment_id" in exc.body:
                exc.payment = Payment.from_json(exc.body)
            raise
        return Payment.from_json(data, replayed=headers.get("Idempotent-Replayed") == "true")

    def get_worker_sessions(self, start_date: int, end_date: int) -> list[ModelRuntime]:
        """Worker runtime per model in [start_date, end_date) (Unix milliseconds), each
        model with its sessions (every page is fetched)."""
        params = {"start_date": start_date, "end_date": end_date}
        first = self._get("/account/worker-sessions", **params, page=1, page_size=500)
        sessions = [WorkerSession.from_json(item) for item in first["items"]]
        number = first["next_page"]
        while number is not None:
            data = self._get("/account/worker-sessions", **params, page=number, page_size=500)
            sessions.extend(WorkerSession.from_json(item) for item in data["items"])
            number = data["next_page"]
        return [
            ModelRuntime(
                model=row["model"],
                runtime=timedelta(seconds=row["runtime_seconds"]),
                session_count=row["sessions"],
                sessions=[s for s in sessions if s.model == row["model"]],
            )
            for row in first["models"]
        ]

    def get_queries_per_model(self, start_date: int, end_date: int) -> list[ModelQueries]:
        """End-user queries per model in [start_date, end_date) (Unix milliseconds)."""
        params = {"start_date": start_date, "end_date": end_date}
        items = self._pages("/account/queries-per-model", params, None, 500)
        return [ModelQueries.from_json(item) for item in items]

    # --- usage -----------------------------------------------------------------------

    def list_llm(
        self,
        *,
        org_id: int | None = None,
        start_date: str | date | datetime | None = None,
        end_date: str | date | datetime | None = None,
        page: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> list[LLMUsage]:
        """LLM usage statistics, newest first (defaults: this month to the end of today).
        Every page unless `page` is given."""
        params = {
            "org_id": org_id,
            "start_date": _date_param(start_date),
            "end_date": _date_param(end_date),
        }
        return [LLMUsage.from_json(i) for i in self._pages("/usage/llm", params, page, page_size)]

    def get_llm(self, id: int) -> LLMUsage:  # `id`: the reference client's name
        """One LLM usage statistic."""
        return LLMUsage.from_json(self._get(f"/usage/llm/{int(id)}"))

    def get_llm_organization_summary(
        self,
        org_id: int,
        *,
        start_date: str | date | datetime | None = None,
        end_date: str | date | datetime | None = None,
    ) -> LLMSummary:
        """Credits (and queries, tokens) of the organization's LLM usage in a range."""
        return LLMSummary.from_json(
            self._get(
                f"/usage/llm/organization/{int(org_id)}/summary",
                start_date=_date_param(start_date),
                end_date=_date_param(end_date),
            )
        )

    def list_llm_organization_summary(self, org_id: int, **kwargs: Any) -> LLMSummary:
        """Deprecated: use get_llm_organization_summary (the same call)."""
        warnings.warn(
            "list_llm_organization_summary is deprecated; use get_llm_organization_summary "
            "for the same method",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.get_llm_organization_summary(org_id, **kwargs)

    def list_matching(
        self,
        *,
        org_id: int | None = None,
        task: str | None = None,
        start_date: str | date | datetime | None = None,
        end_date: str | date | datetime | None = None,
        page: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> list[MatchingUsage]:
        """Matching usage (runs), newest first, optionally of one task (IDR or CDM)."""
        params = {
            "org_id": org_id,
            "task": task,
            "start_date": _date_param(start_date),
            "end_date": _date_param(end_date),
        }
        items = self._pages("/usage/matching", params, page, page_size)
        return [MatchingUsage.from_json(item) for item in items]

    def get_month_to_date_usage(self) -> MonthToDateUsage:
        """This month's prompt, completion and total tokens against the tier's allocation,
        by model, with cost."""
        return MonthToDateUsage.from_json(self._get("/usage"))

    get_usage = get_month_to_date_usage

    def get_usage_report(
        self,
        start: str | date | datetime,
        end: str | date | datetime,
        *,
        metric: str = "credits",
        group_by: str | list[str] | tuple[str, ...] = (),
        filters: dict[str, list[Any] | Any] | None = None,
        bucket: str = "1d",
        time_zone: str | None = None,
        project: int | list[int] | tuple[int, ...] | None = None,
    ) -> UsageReport:
        """A metric over [start, end) per group and bucket (1h, 1d, 1w, 1mo), in the
        organization's time zone unless time_zone names another, with the previous
        period's totals: the figures of Usage → Explore. All pages of buckets.

        `project` (an id or ids) is filters={"project": ...}; group_by="project" groups
        by project (each group then carries `project` and `project_name`)."""
        params: dict[str, Any] = {
            "start": _date_param(start),
            "end": _date_param(end),
            "metric": metric,
            "group_by": [group_by] if isinstance(group_by, str) else list(group_by),
            "bucket": bucket,
            "time_zone": time_zone,
        }
        filters = dict(filters or {})
        if project is not None:
            filters["project"] = project
        for dim, values in filters.items():
            params[f"filter[{dim}]"] = (
                list(values) if isinstance(values, list | tuple) else [values]
            )
        pages = [self._get("/usage/report", **params, page=1, page_size=500)]
        while pages[-1]["next_page"] is not None:
            pages.append(
                self._get("/usage/report", **params, page=pages[-1]["next_page"], page_size=500)
            )
        return UsageReport.from_pages(pages)

    # --- sending usage (API key) -----------------------------------------------------

    def submit_usage_records(self, records: list[dict[str, Any]]) -> IngestResult:
        """Send a batch of up to 1,000 records (docs/api.md's wire shape) with the API key.
        Bad records come back in .rejected, naming their field; the rest are stored."""
        _, _, data = self.request(
            "POST", "/usage/records", body={"records": records}, use="api_key"
        )
        return IngestResult.from_json(data)

    def submit_job(self, id: str, cores: int, **fields: Any) -> Job:
        """Submit a job (status submitted unless given) with the API key."""
        body = {"id": id, "cores": cores, **fields}
        return Job.from_json(self.request("POST", "/jobs", body=body, use="api_key")[2])

    def get_job(self, id: str) -> Job:
        return Job.from_json(self.request("GET", f"/jobs/{quote(id, safe='')}", use="api_key")[2])

    def transition_job(
        self,
        id: str,
        status: str,
        *,
        at: datetime | None = None,
        core_hours: float | None = None,
    ) -> Job:
        """Move a job along submitted → running → completed | failed | cancelled."""
        body: dict[str, Any] = {"status": status}
        if at is not None:
            body["at"] = at.isoformat()
        if core_hours is not None:
            body["core_hours"] = core_hours
        path = f"/jobs/{quote(id, safe='')}/transition"
        return Job.from_json(self.request("POST", path, body=body, use="api_key")[2])

    # --- session tokens --------------------------------------------------------------

    def get_session_token_info(self) -> SessionTokenInfo:
        """The session token in use: whose, and when it expires."""
        return SessionTokenInfo.from_json(
            self.request("GET", "/auth/session-token", use="session")[2]
        )

    def renew_session_token(self) -> SessionTokenInfo:
        """Extend the session token in use to 30 days from now (before it expires)."""
        return SessionTokenInfo.from_json(
            self.request("POST", "/auth/session-token/renew", use="session")[2]
        )

    def revoke_session_token(self) -> None:
        """Revoke the session token in use; the client forgets it."""
        self.request("DELETE", "/auth/session-token", use="session")
        self.session_token = None
