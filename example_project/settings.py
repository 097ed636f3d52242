"""Settings of the example project, read from the environment."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from botocore.config import Config as BotoConfig
from corsheaders.defaults import default_headers as cors_default_headers

from rindle_tus import cors as rindle_cors

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("EXAMPLE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-not-secret")
# Off unless DJANGO_DEBUG=1 (scripts/demo sets it): debug pages show settings and
# tracebacks to anyone who can make a request fail.
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rindle_tus",
    "example_project.uploads",
]

MIDDLEWARE = [
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=60,
        # A persistent connection the database dropped (a restart, a failover, an
        # idle timeout) is replaced before the request uses it, instead of failing it.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    # Several processes write to one file (gunicorn workers, Celery): take the
    # write lock when a transaction starts, or a read-then-write transaction
    # fails with "database is locked" instead of waiting.
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif os.environ.get("DATABASE_POOL"):
    # Under ASGI each request runs in a thread of its own, so a persistent
    # connection is never reused and lingers until collected: Django's
    # documentation says to turn persistent connections off there and pool
    # instead (example_project/asgi.py sets this). The value is the pool's size
    # per process.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": int(os.environ["DATABASE_POOL"]),
    }

STORAGES = {
    "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ.get("AWS_STORAGE_BUCKET_NAME", "rindle"),
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL", "http://127.0.0.1:8333"),
            "access_key": os.environ.get("AWS_ACCESS_KEY_ID", "rindle"),
            "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "rindle-secret"),
            "region_name": os.environ.get("AWS_S3_REGION_NAME", "us-east-1"),
            "location": os.environ.get("AWS_LOCATION", ""),
            # One boto3 client serves every thread of a worker (rindle_tus shares it), so its
            # pool should hold threads x RINDLE_TUS_UPLOAD_CONCURRENCY connections.
            # Bounded timeouts and retries: a PATCH whose S3 stops answering
            # fails in well under its lease instead of hanging for minutes.
            "client_config": BotoConfig(
                s3={"addressing_style": "path"},
                max_pool_connections=int(os.environ.get("AWS_S3_MAX_POOL_CONNECTIONS", "32")),
                connect_timeout=int(os.environ.get("AWS_S3_CONNECT_TIMEOUT", "5")),
                read_timeout=int(os.environ.get("AWS_S3_READ_TIMEOUT", "60")),
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        },
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

RINDLE_TUS_TMP_DIR = os.environ.get("RINDLE_TUS_TMP_DIR", str(VAR_DIR / "tails"))
if os.environ.get("RINDLE_TUS_NODE_NAME"):
    RINDLE_TUS_NODE_NAME = os.environ["RINDLE_TUS_NODE_NAME"]
if os.environ.get("RINDLE_TUS_PART_SIZE"):
    RINDLE_TUS_PART_SIZE = int(os.environ["RINDLE_TUS_PART_SIZE"])


def _limit(value: str) -> int | None:
    """An integer, or None (no limit) for an empty value or "none"."""
    return None if value.strip().lower() in ("", "none") else int(value)


# The largest upload (Tus-Max-Size); RINDLE_TUS_MAX_SIZE= (empty) or "none" lifts it,
# leaving only S3's 5 TiB.
RINDLE_TUS_MAX_SIZE = _limit(os.environ.get("RINDLE_TUS_MAX_SIZE", str(100 * 1024**3)))
# Request bodies (PATCH, POST with a body) one process reads at once. Keep it
# below gunicorn's --threads (8 in scripts/demo), so that the rest of the site
# (the page, the admin, HEADs) keeps threads while uploads fill the others.
RINDLE_TUS_MAX_BODIES: int | None = 6
# The other limits of rindle_tus.conf, when set; "none" lifts one (MAX_UNFINISHED has 100 by default).
for _name in ("MAX_UNFINISHED", "MAX_TAIL_BYTES", "MAX_BODIES"):
    if os.environ.get(f"RINDLE_TUS_{_name}"):
        globals()[f"RINDLE_TUS_{_name}"] = _limit(os.environ[f"RINDLE_TUS_{_name}"])
if os.environ.get("RINDLE_TUS_MAX_MEMORY_PART"):
    RINDLE_TUS_MAX_MEMORY_PART = int(os.environ["RINDLE_TUS_MAX_MEMORY_PART"])
if os.environ.get("RINDLE_TUS_UPLOAD_CONCURRENCY"):
    RINDLE_TUS_UPLOAD_CONCURRENCY = int(os.environ["RINDLE_TUS_UPLOAD_CONCURRENCY"])
if os.environ.get("RINDLE_TUS_TAIL_STORE"):
    RINDLE_TUS_TAIL_STORE = os.environ["RINDLE_TUS_TAIL_STORE"]
# Clients without the page's session cookie (tuspy, a mobile app) sign in with
# `Authorization: Bearer <token>`; `manage.py create_upload_token USERNAME` issues one.
RINDLE_TUS_AUTHENTICATE = "example_project.uploads.tokens.authenticate"
# Who may do what (rindle_tus.hooks): e.g. rindle_tus.hooks.owner_only. The
# finished-uploads list on the page follows it too.
if os.environ.get("RINDLE_TUS_PERMISSION"):
    RINDLE_TUS_PERMISSION = os.environ["RINDLE_TUS_PERMISSION"]
# 104 (Upload Resumption Supported) to clients of the resumable upload draft,
# which gunicorn lets the app send; off behind nginx, which mishandles it.
RINDLE_TUS_SEND_104 = os.environ.get("RINDLE_TUS_SEND_104", "0") == "1"
# Prometheus metrics (served at /metrics to this machine and to staff); "0" turns them off.
RINDLE_TUS_METRICS = os.environ.get("RINDLE_TUS_METRICS", "1") != "0"
for _name in ("LEASE_SECONDS", "LEASE_WAIT", "BODY_TIMEOUT", "BODY_MIN_RATE"):
    if os.environ.get(f"RINDLE_TUS_{_name}"):
        globals()[f"RINDLE_TUS_{_name}"] = float(os.environ[f"RINDLE_TUS_{_name}"])

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# The upload page's bundle, built from example_project/frontend by scripts/_bootstrap.sh.
STATICFILES_DIRS = [BASE_DIR / "example_project" / "static"]
# The site serves its static files itself (example_project/urls.py), with DEBUG
# off too; EXAMPLE_SERVE_STATIC=0 leaves them to a web server in front that
# serves STATIC_ROOT (manage.py collectstatic) at STATIC_URL.
EXAMPLE_SERVE_STATIC = os.environ.get("EXAMPLE_SERVE_STATIC", "1") == "1"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "rindle_tus": {"handlers": ["console"], "level": os.environ.get("RINDLE_TUS_LOG_LEVEL", "INFO")},
        # Django logs a request's traceback to the console only with DEBUG on (and
        # mails it to ADMINS otherwise): to the log in both cases here.
        "django": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "WARNING")},
    },
}

# Celery runs the reaper (rindle_tus.tasks, docs/operations.md); the schedule
# comes from rindle_tus.schedule, so web processes never load Celery. The broker is
# CELERY_BROKER_URL (Redis, say) when set; otherwise kombu's filesystem
# transport under var/, which needs no server and serves a worker and beat on
# this one machine: celery -A example_project worker -B -Q celery,rindle_tus.tails.<node> -c 1
import socket  # noqa: E402

from rindle_tus.schedule import BEAT_SCHEDULE, tail_sweep_schedule  # noqa: E402

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    _BROKER_DIR = VAR_DIR / "celery-broker"
    _BROKER_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR),
        "data_folder_out": str(_BROKER_DIR),
        # Otherwise kombu keeps its exchange files in ./control of the working directory.
        "control_folder": str(_BROKER_DIR / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    **BEAT_SCHEDULE,
    **tail_sweep_schedule([os.environ.get("RINDLE_TUS_NODE_NAME") or socket.gethostname()]),
}

# Browsers on other origins (a front end served elsewhere) may upload too.
CORS_ALLOWED_ORIGINS = [o for o in os.environ.get("CORS_ALLOWED_ORIGINS", "").split(",") if o]
CORS_URLS_REGEX = r"^/files/.*$"
CORS_ALLOW_HEADERS = (*cors_default_headers, *rindle_cors.CORS_ALLOW_HEADERS)
CORS_EXPOSE_HEADERS = rindle_cors.CORS_EXPOSE_HEADERS
CORS_ALLOW_METHODS = rindle_cors.CORS_ALLOW_METHODS
