"""The request a log line is written for: its id and, once known, the organization.

Context variables, so every log line written while a request is served carries both
(console.observability's filter reads them), whichever app writes it. Here, in core,
because every app sets or reads them (accounts resolves the organization).
"""

import contextvars

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
organization_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "organization", default=None
)
# The client's address (core.client_ip), for the audit log's "from where".
client_ip_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "client_ip", default=None
)
