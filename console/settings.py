"""Settings, read from the environment.

With nothing set the console runs on its embedded default: a SQLite file in the
project folder, Celery tasks run eagerly in-process and a local-memory cache.
`CONSOLE_MODE=production` turns on the deploy hardening (`manage.py check --deploy`
is clean there) and requires SECRET_KEY.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


PRODUCTION = os.environ.get("CONSOLE_MODE", "development").lower() == "production"
DEBUG = env_bool("DEBUG", default=not PRODUCTION)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when CONSOLE_MODE=production")
    # Development only: a fixed key so sessions survive restarts of the demo.
    SECRET_KEY = "dev-insecure-usage-console-key-change-me-in-production-0123456789"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "console.apps.ConsoleAdminConfig",  # django.contrib.admin with the overview
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",  # its widget templates, for the form renderer below
    "django_htmx",
    "axes",
    # Sign-in's second factor (TOTP, passkeys, recovery codes) and the list of a user's
    # sessions: django-allauth's mfa and usersessions, on allauth's account core
    # (docs/sign-in.md says why this library and which of its pages the console uses).
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    # django-ninja: the API (console/api.py); listed so its Swagger UI files are served
    # from static/ (no CDN).
    "ninja",
    # The platform package under every app (docs/architecture.md): its only rows are the
    # sweeps' runs and failures.
    "core",
    "console",
    "accounts",
    "billing",
    # usage/ split by what it does (docs/architecture.md): the records, then what is
    # built on them, lowest first.
    "usage",
    "rollups",
    "spend",
    "ingest",
    "insights",
    "alerts",
]
# The benchmarks (bench/, docs/benchmarks.md) come with a checkout, not with the installed
# package: their management commands are listed when the checkout's bench/ is here.
if (BASE_DIR / "bench" / "apps.py").is_file():
    INSTALLED_APPS.append("bench")

MIDDLEWARE = [
    # First: load balancers' probes (/healthz, /readyz) come by IP over plain HTTP.
    "console.observability.HealthCheckMiddleware",
    # The gateway's authorize, answered before the rest of the chain and django-ninja.
    "console.api_path.LeanApiMiddleware",
    # A request id on every answer and every log line written while serving it.
    "console.observability.RequestIdMiddleware",
    # Before the session is read: lets a read request read from the replica, if any.
    "console.replica.ReplicaRoutingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The page headers every answer carries, the API's short path's too: the policy and
    # no framing (both only add headers).
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Programs' bearer calls to /api/v1/ leave the chain here: no session, CSRF, messages.
    "console.api_path.ApiPathMiddleware",
    # Static files from the app server itself (hashed, compressed, cached for a year).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The client's address for the audit log (accounts.audit).
    "accounts.middleware.ClientAddressMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # allauth's login stages (the second factor is asked between password and session).
    "allauth.account.middleware.AccountMiddleware",
    # Each signed-in session's device, address and last request, for Settings → Security.
    "accounts.middleware.SessionActivityMiddleware",
    # Last, as django-axes asks: it turns a lockout signalled by the backend into a page.
    "axes.middleware.AxesMiddleware",
]

# Every form renders through one layout (templates/forms/): label, field, error, help.
FORM_RENDERER = "console.forms.ConsoleFormRenderer"

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "console.context_processors.session_chip",
            ],
        },
    },
]

# Database: DATABASE_URL (PostgreSQL in production), else a SQLite file here.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # Pages read aggregates over rollup rows plus an hour or two of records (a few
        # thousand rows); a parallel plan for such a UNION ALL spends 10-15 ms starting
        # workers, which made the usage panel at 10M records twice as slow as at 10k
        # (manage.py bench_rollup). Jobs that want parallel scans can SET it locally.
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
            "-c max_parallel_workers_per_gather=0"
        )
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }
# A streaming replica of the primary takes what pages and the read API read
# (console/db_router.py): DATABASE_REPLICA_URL, PostgreSQL like DATABASE_URL. A client
# that wrote reads the primary for REPLICA_STICKY_SECONDS after, so it sees its write;
# the replica is asked every REPLICA_CHECK_SECONDS how far behind it is, and reads go
# back to the primary while it is down or more than REPLICA_MAX_LAG_SECONDS behind.
# Keep STICKY >= MAX_LAG + CHECK: a client's write is then on the replica, or the
# replica is not used, by the time its stickiness ends.
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
REPLICA_STICKY_SECONDS = int(os.environ.get("REPLICA_STICKY_SECONDS", "10"))
REPLICA_MAX_LAG_SECONDS = float(os.environ.get("REPLICA_MAX_LAG_SECONDS", "5"))
REPLICA_CHECK_SECONDS = float(os.environ.get("REPLICA_CHECK_SECONDS", "2"))
if DATABASE_REPLICA_URL:
    if not DATABASE_URL:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs DATABASE_URL (its primary)")
    replica = dj_database_url.parse(DATABASE_REPLICA_URL, conn_max_age=60)
    replica["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        **replica.get("OPTIONS", {}),
        # A replica that does not answer is skipped quickly, not waited for.
        "connect_timeout": 2,
    }
    # Tests read the primary's test database through this alias: no database of its own.
    replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = replica
DATABASE_ROUTERS = ["console.db_router.PrimaryReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# How long each process keeps an API credential it read (accounts/credential_cache.py):
# a revoked key or token is refused by every process within this many seconds.
API_CREDENTIAL_CACHE_SECONDS = float(os.environ.get("API_CREDENTIAL_CACHE_SECONDS", "1"))

# Redis is the cache and the Celery broker when REDIS_URL is set.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses locked-out credentials before any password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Repeated failed logins lock out (django-axes, handler in accounts/lockout.py): an
# account name after AXES_FAILURE_LIMIT failures from anywhere, and a client address
# after AXES_IP_FAILURE_LIMIT failures whatever names they were for (higher, so a shared
# address does not lock out everyone on it). A success clears only that name's failures
# from that address.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_IP_FAILURE_LIMIT = int(os.environ.get("AXES_IP_FAILURE_LIMIT", "50"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_HANDLER = "accounts.lockout.ConsoleLockoutHandler"
AXES_RESET_ON_SUCCESS = True
# Count "Ana@x" and "ana@x" as one account, as login does.
AXES_USERNAME_CALLABLE = "accounts.auth.lockout_username"
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
# The client's address: behind TRUSTED_PROXY_COUNT reverse proxies, the entry they added
# to X-Forwarded-For (core/client_ip.py); with none, REMOTE_ADDR and the header is
# ignored (a client could write anything there).
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
AXES_CLIENT_IP_CALLABLE = "core.client_ip.client_ip"
# Password reset requests: per client address and per email address, in an hour.
PASSWORD_RESET_LIMIT_PER_IP = int(os.environ.get("PASSWORD_RESET_LIMIT_PER_IP", "10"))
PASSWORD_RESET_LIMIT_PER_EMAIL = int(os.environ.get("PASSWORD_RESET_LIMIT_PER_EMAIL", "3"))
PASSWORD_RESET_WINDOW_SECONDS = 3600
AXES_VERBOSE = False

# Two-factor (django-allauth's mfa; docs/sign-in.md). The console keeps its own password
# form and lockout; allauth takes over after the password for the second factor.
ACCOUNT_ADAPTER = "accounts.auth.ConsoleAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
# Console accounts are made by operators and invitations, whose addresses are the ones the
# invitation went to: allauth's own e-mail verification records are not kept.
MFA_ALLOW_UNVERIFIED_EMAIL = True
MFA_ADAPTER = "accounts.auth.ConsoleMFAAdapter"
# The key that encrypts authenticator-app secrets at rest; unset, one derived from SECRET_KEY.
MFA_SECRETS_KEY = os.environ.get("MFA_SECRETS_KEY", "")
MFA_TOTP_ISSUER = "Usage Console"
# One 30-second step either side of now: phones and servers drift that much.
MFA_TOTP_TOLERANCE = 1
MFA_FORMS = {
    "authenticate": "accounts.auth.LockedAuthenticateForm",
    "authenticate_webauthn": "accounts.auth.LockedAuthenticateWebAuthnForm",
}
# WebAuthn needs a secure origin; plain http is allowed on a developer's machine only.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = not PRODUCTION
# Last seen is kept by accounts.middleware.SessionActivityMiddleware (once a minute).
USERSESSIONS_TRACK_ACTIVITY = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Without DEBUG, static files are served by WhiteNoise from STATIC_ROOT (`manage.py
# collectstatic`) under content-hashed names, compressed (gzip, and Brotli when
# installed), with a year's Cache-Control: one process serves a complete console. With
# DEBUG they come straight from static/ as they are edited.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# The console's address as people reach it: every link in an email (invitations,
# statements, alerts) starts with it. On the embedded default it is where `manage.py demo
# --serve` listens (the demo sets it from its --host and --port); behind a proxy or on
# another host, set it. CONSOLE_BASE_URL, its former name, is still read.
_SITE_URL_SET = os.environ.get("SITE_URL") or os.environ.get("CONSOLE_BASE_URL") or ""
SITE_URL = (_SITE_URL_SET or "http://127.0.0.1:8000").rstrip("/")
# True when the environment set it (the demo then leaves it alone).
SITE_URL_FROM_ENVIRONMENT = bool(_SITE_URL_SET)

# Email: the console backend on the embedded default, SMTP when EMAIL_HOST is set.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
# Where the file-based backend (EMAIL_BACKEND=...filebased.EmailBackend) writes messages.
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(BASE_DIR / "sent-mail"))
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=True)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Usage Console <console@localhost>")
# Operators mailed about what only they can act on (reconciliation mismatches): ADMINS=a,b
ADMINS = [a.strip() for a in os.environ.get("ADMINS", "").split(",") if a.strip()]

# Celery: eager in-process unless a broker is configured.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# The beat schedule lives here, each entry explained in words.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Every five minutes, check every organization's alert rules (each fires once per
    # crossing, so running often only shortens the time to the first email).
    "alerts-evaluate": {"task": "alerts.tasks.alerts_evaluate_due", "schedule": 300.0},
    # Every hour at five past, roll up each organization's previous day once its own
    # midnight has passed (hourly, so every time zone gets its "nightly" run), plus the
    # days late records or job status moves marked dirty.
    "usage-rollup-sweep": {"task": "usage.rollup_sweep", "schedule": 3600.0},
    # Every five minutes, roll up each organization's last finished hour (once it is
    # five minutes old) and the hours late records marked dirty, so pages read only the
    # current hour of the open day from raw records; also drops hour rollups past the
    # days kept.
    "usage-rollup-hours-sweep": {"task": "usage.rollup_hours_sweep", "schedule": 300.0},
    # Every day at 01:10 UTC, make the raw usage tables' monthly partitions for this
    # month and the next three where missing (PostgreSQL; `migrate` makes them too), so
    # records never land in the catch-all default partition; a month missed one day is
    # made the next.
    "usage-partitions-ahead": {
        "task": "usage.partitions_ahead",
        "schedule": crontab(hour=1, minute=10),
    },
    # Every night at 03:30 UTC, after the sweep has rolled up the day just closed in most
    # zones, check each organization's cached balance against its ledger and its clean
    # rollup days of the last week against the raw records; mismatches are reported
    # (log, admin, mail to ADMINS), never fixed.
    "billing-reconcile": {
        "task": "billing.tasks.reconcile_nightly",
        "schedule": crontab(hour=3, minute=30),
    },
    # Hourly at twenty past, around the turn of each month (the 28th to the 2nd: a month
    # closes between UTC+14 and UTC-12), issue each organization's statement for every
    # month closed in its own zone that has none yet (a missed run catches up at the
    # next turn); each is issued once and its link emailed to owners and billing.
    "billing-statements": {
        "task": "billing.tasks.statements_issue_due_all",
        "schedule": crontab(minute=20, day_of_month="1-2,28-31"),
    },
    # Every minute, release the holds of reservations past their expiry (authorize and
    # ingestion also expire them as they pass, so this only tidies quiet organizations).
    "usage-reservations-expire": {"task": "usage.reservations_expire_due", "schedule": 60.0},
}
# Spend controls: how long an authorization's reservation holds its worst-case cost.
SPEND_RESERVATION_SECONDS = int(os.environ.get("SPEND_RESERVATION_SECONDS", "600"))
# Authorize decides on Redis counters (docs/spend-controls.md) when the cache is Redis;
# off, it decides on the database's path under the organization's row lock.
SPEND_COUNTERS = env_bool("SPEND_COUNTERS", True)
# On the database's path, an authorization commits without waiting for its WAL flush.
SPEND_AUTHORIZE_ASYNC_COMMIT = env_bool("SPEND_AUTHORIZE_ASYNC_COMMIT", True)
# A request's messages are tokenized within this budget (past it: 413 naming the limit).
SPEND_TOKENIZE_MAX_CHARS = int(os.environ.get("SPEND_TOKENIZE_MAX_CHARS", "600000"))
SPEND_TOKENIZE_SECONDS = float(os.environ.get("SPEND_TOKENIZE_SECONDS", "0.25"))
# Requests and tokens per minute by tier, over spend/ratelimit.py's defaults:
# {"developer": (600, 1_000_000), ...}. Set in a settings override, not the environment.
USAGE_RATE_LIMITS: dict[str, tuple[int, int]] = {}
# Batches one key may send a minute: 10 × its RPM, at least this many.
INGEST_CEILING_PER_MINUTE = int(os.environ.get("INGEST_CEILING_PER_MINUTE", "6000"))
# A record may be stamped at most this far in the future (clocks drift).
USAGE_MAX_FUTURE_SECONDS = int(os.environ.get("USAGE_MAX_FUTURE_SECONDS", "300"))
# A controller is online while its last heartbeat is younger than this.
CONTROLLER_ONLINE_SECONDS = int(os.environ.get("CONTROLLER_ONLINE_SECONDS", "300"))

# One credit is this many US dollars' worth (docs/money.md).
CREDITS_PER_USD = os.environ.get("CREDITS_PER_USD", "1")

# Billing. Payments go through the embedded sandbox (a card processor's test mode)
# unless Stripe keys are set, then through Stripe Checkout and its signed webhook.
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
BILLING_PAYMENT_PROVIDER = os.environ.get(
    "BILLING_PAYMENT_PROVIDER", "stripe" if STRIPE_SECRET_KEY else "sandbox"
)
BILLING_CURRENCY = "USD"
# One payment's bounds in cents, and the Add Credit presets in dollars.
BILLING_MIN_PAYMENT_MINOR = int(os.environ.get("BILLING_MIN_PAYMENT_MINOR", "500"))
BILLING_MAX_PAYMENT_MINOR = int(os.environ.get("BILLING_MAX_PAYMENT_MINOR", "1000000"))
BILLING_PRESET_AMOUNTS = [10, 25, 50, 100, 250]
# The seller printed on receipts and statements, and whether statement emails carry the
# PDF (by default they carry a link: documents stay behind the login).
BILLING_SELLER = {
    "name": os.environ.get("BILLING_SELLER_NAME", "Usage Console, Inc."),
    "address": os.environ.get(
        "BILLING_SELLER_ADDRESS", "100 Example Street, San Francisco, CA 94105, United States"
    ),
    "tax_id": os.environ.get("BILLING_SELLER_TAX_ID", ""),
    "email": os.environ.get("BILLING_SELLER_EMAIL", "billing@usage-console.example"),
}
BILLING_STATEMENT_ATTACH_PDF = env_bool("BILLING_STATEMENT_ATTACH_PDF", default=False)

# Alerts. Webhooks to private,
# loopback or link-local addresses are refused unless ALERT_WEBHOOK_ALLOW_PRIVATE is on
# (a receiver on the same host or network). Batches arriving within
# ALERT_EVALUATE_DEBOUNCE_SECONDS of each other share one evaluation.
ALERT_WEBHOOK_ALLOW_PRIVATE = env_bool("ALERT_WEBHOOK_ALLOW_PRIVATE", default=False)
ALERT_WEBHOOK_TIMEOUT_SECONDS = 5
ALERT_EVALUATE_DEBOUNCE_SECONDS = int(os.environ.get("ALERT_EVALUATE_DEBOUNCE_SECONDS", "5"))

# Usage aggregates kept current at ingestion (rollups/services/aggregates.py): the width of
# a bucket in seconds (a divisor of 900 so every time zone's hours and days are whole
# buckets; after a change, `manage.py rollup` over the affected days rebuilds them), and
# a switch that turns them off (ingestion skips the upsert, pages read raw records as
# before) for benchmarks that measure what they cost. Never off in production.
USAGE_BUCKET_SECONDS = int(os.environ.get("USAGE_BUCKET_SECONDS", "60"))
USAGE_BUCKETS = env_bool("USAGE_BUCKETS", True)
# Seconds of database time one usage report (GET /api/v1/usage/report, Explore and its
# CSVs) may take; past it the answer is an error naming the limit (docs/api.md). Well
# under gunicorn's worker timeout, so a costly report never gets its worker killed.
USAGE_REPORT_TIME_LIMIT = float(os.environ.get("USAGE_REPORT_TIME_LIMIT", "10"))

# Content-Security-Policy (Django 6 built in): only the console's own files. Plotly
# sets inline styles on the chart elements it draws, hence 'unsafe-inline' for styles.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    # HTTPS is what the WSGI server says (wsgi.url_scheme). gunicorn sets it from
    # X-Forwarded-Proto only when the request comes from FORWARDED_ALLOW_IPS, the proxy;
    # reading the header here would believe it from any client that reaches gunicorn.
    SECURE_PROXY_SSL_HEADER = None
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Logs: one JSON object per line on stdout (time, level, logger, message, request_id,
# organization, and the traceback of an error), or plain lines with LOG_FORMAT=plain
# (the default with DEBUG, for people reading a terminal).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "console.observability.LogContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s rid=%(request_id)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s "
            "%(organization)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT if LOG_FORMAT in {"plain", "json"} else "json",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        # Errors are logged with their traceback by django.request; nothing else needed.
        "django.request": {"level": "ERROR", "propagate": True},
    },
}
