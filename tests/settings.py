"""Settings for the test suite: a minimal host project around rindle_tus.

The S3 endpoint is filled in by the ``s3`` fixture in ``conftest.py``.
"""

import os
import tempfile

import dj_database_url
from corsheaders.defaults import default_headers

from rindle_tus import cors as rindle_cors

SECRET_KEY = "tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"

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
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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

DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", "sqlite:///:memory:"))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Files, not Django's shared in-memory database: the lease heartbeat and
    # the live server's threads each use a connection of their own (an
    # in-memory database's one connection would be shared between threads),
    # and SQLite's shared cache answers "table is locked" at once where a
    # file waits its turn.
    _db_file = os.path.join(tempfile.gettempdir(), f"rindle-tus-tests-{os.getpid()}")
    DATABASES["default"]["NAME"] = f"{_db_file}.sqlite3"
    DATABASES["default"]["TEST"] = {"NAME": f"{_db_file}-test.sqlite3"}
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # As the example project does: take the write lock when a transaction
    # starts, so a read-then-write transaction waits instead of failing.
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STORAGES = {
    "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"bucket_name": "rindle-test"}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_URL = "static/"
# The live server serves MEDIA_URL itself; left empty it would claim every path.
MEDIA_URL = "/media/"
# The example upload page's bundle, served by the live server in the browser test.
STATICFILES_DIRS = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "example_project/static")]

RINDLE_TUS_PART_SIZE = 5 * 1024 * 1024
# A tail folder of this test process's own: the suite runs in several
# processes at once (pytest-xdist), and the tail sweep, the node's tail bytes
# and the tails of one must never be another's.
RINDLE_TUS_TMP_DIR = os.path.join(tempfile.gettempdir(), f"rindle-tus-tests-{os.getpid()}-tmp")
RINDLE_TUS_NODE_NAME = "test-node"

CORS_ALLOWED_ORIGINS = ["http://app.example"]
CORS_URLS_REGEX = r"^/files/.*$"
CORS_ALLOW_HEADERS = (*default_headers, *rindle_cors.CORS_ALLOW_HEADERS)
CORS_EXPOSE_HEADERS = rindle_cors.CORS_EXPOSE_HEADERS
CORS_ALLOW_METHODS = rindle_cors.CORS_ALLOW_METHODS
