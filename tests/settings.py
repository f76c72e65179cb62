"""Settings for the test suite: ``DATABASE_URL`` and ``REDIS_URL`` pick the servers."""

from __future__ import annotations

import os
import sys
import tempfile
import uuid

import dj_database_url
import django

from tests.redis_counting import CountingConnection
from tests.redis_server import suite_redis_url

# The running example of README.md and docs/ is the app `blog` in tests/docs_site, importable
# as a top-level package as in a project (`from blog.models import Post`): here rather than in
# pytest's pythonpath, so that every process using these settings finds it (mypy's plugin,
# the worker subprocesses).
_DOCS_SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "docs_site")
if _DOCS_SITE not in sys.path:
    sys.path.append(_DOCS_SITE)

SECRET_KEY = "signalhooks-tests"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SITE_ID = 1
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.sites",
    "django.contrib.admin",
    "allauth",
    "allauth.account",
    *(["django_tasks"] if django.VERSION < (6, 0) else []),
    "django_tasks_db",
    "signalhooks",
    "tests.testapp",
    "tests.cacheapp",
    "tests.relatedapp",
    # The running example of README.md and docs/ (tests/docs_site, tests/test_docs.py).
    "blog",
]

# tests/test_contrib_debug_toolbar.py: django-debug-toolbar with only the signalhooks panel.
INSTALLED_APPS.append("debug_toolbar")
DEBUG_TOOLBAR_PANELS = ["signalhooks.contrib.debug_toolbar.panel.SignalhooksPanel"]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

_TASKS_MODULE = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
TASKS = {
    "default": {"BACKEND": f"{_TASKS_MODULE}.backends.immediate.ImmediateBackend"},
    "queued": {"BACKEND": "django_tasks_db.DatabaseBackend"},
}

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

DATABASE_URL = os.environ.get("DATABASE_URL", "")
# Lets several test runs share one PostgreSQL server without dropping each other's DB.
_SUFFIX = os.environ.get("SIGNALHOOKS_TEST_DB_SUFFIX", "")
if DATABASE_URL:
    DATABASES = {
        "default": {
            **dj_database_url.parse(DATABASE_URL),
            "TEST": {"NAME": f"test_signalhooks{_SUFFIX}"},
        },
        "other": {
            **dj_database_url.parse(DATABASE_URL),
            "TEST": {"NAME": f"test_signalhooks_other{_SUFFIX}"},
        },
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            # The non-test names are opened by a subprocess's system checks only: keep
            # them out of the working tree.
            "NAME": os.path.join(tempfile.gettempdir(), "signalhooks_default.sqlite3"),
            # A file, not memory: the db_worker processes of the mail tests share it.
            "TEST": {"NAME": f"test_signalhooks_default{_SUFFIX}.sqlite3"},
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF"},
        },
        "other": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(tempfile.gettempdir(), "signalhooks_other.sqlite3"),
        },
    }
IS_POSTGRES = str(DATABASES["default"]["ENGINE"]).endswith("postgresql")

REDIS_URL = suite_redis_url()
# A prefix of our own: the suite may only ever delete its own keys.
CACHE_PREFIX = f"sht-{uuid.uuid4().hex[:8]}"
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_PREFIX,
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
            # Counts round trips at the redis-py connection for the tests.
            "CONNECTION_POOL_KWARGS": {"connection_class": CountingConnection},
        },
    },
    "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "builtin": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{CACHE_PREFIX}-builtin",
    },
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_FROM_EMAIL = "site@example.com"
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

LOGGING_CONFIG = None
