"""gunicorn's configuration: `gunicorn -c console/gunicorn.conf.py console.wsgi`.

Every setting can be overridden from the environment (GUNICORN_*) or the command line.
"""

import multiprocessing
import os

# Loopback by default: the TLS-terminating proxy runs on the same host (docs/deploying.md).
# GUNICORN_BIND=0.0.0.0:8000 to listen on every address, with FORWARDED_ALLOW_IPS set to
# the proxy's address.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Threaded workers: unlike sync workers, which answer `Connection: close` to everything,
# they keep an API client's connection open between calls (keepalive below), so a
# gateway's pool does not open a TCP connection per request. (2 × cores) + 1 processes
# with a few threads each, chosen by measurement on a 2-core machine (docs/deploying.md):
# requests are short and wait on PostgreSQL and Redis, and one process per core would
# leave a core idle while its threads wait.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A worker silent this long is killed and replaced; a 1,000-record batch takes well
# under a second, a page under 100 ms.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM or SIGHUP, requests in flight get this long to finish.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Seconds an idle client connection stays open (gthread; sync workers close at once).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then (jittered so they don't all restart at once), which caps
# the effect of any slow leak.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "500"))
# Load the app once in the master, then fork: faster starts, shared memory.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") not in {"0", "false", "no"}
# gunicorn's own lines (its access log and its errors) are JSON objects on stdout, like
# the application's (settings.LOGGING); the access line repeats the request id.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
_JSON = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
    "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
}
_STDOUT = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": _JSON},
    "handlers": {"console": _STDOUT, "error_console": _STDOUT},
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
}
# Behind a proxy: trust its X-Forwarded-* headers, X-Forwarded-Proto included (the console
# learns HTTPS from gunicorn), only from this address (set FORWARDED_ALLOW_IPS to the proxy's).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Workers' heartbeat files in memory, as gunicorn advises where /tmp may be a slow disk.
_SHM = "/dev/shm"  # noqa: S108
worker_tmp_dir = _SHM if os.path.isdir(_SHM) else None


def post_fork(server, worker):
    # Connections opened in the master before the fork must not be shared by workers.
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        conn.close()
