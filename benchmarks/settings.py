"""Benchmark settings: SQLite in memory unless DATABASE_URL says otherwise."""

from __future__ import annotations

import os
import secrets
import sys

import dj_database_url
import django
from tests.redis_counting import CountingConnection
from tests.redis_server import suite_redis_url

SECRET_KEY = "signalhooks-benchmarks"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SITE_ID = 1

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sites",
    *(["django_tasks"] if django.VERSION < (6, 0) else []),
    "django_tasks_db",
    # django-lifecycle-hooks needs Python 3.12 (typing.override).
    *(["django_lifecycle_hooks"] if sys.version_info >= (3, 12) else []),
    "signalhooks",
    "benchmarks.benchapp",
]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {
        "default": {
            **dj_database_url.parse(DATABASE_URL),
            "TEST": {
                "NAME": "test_signalhooks_bench" + os.environ.get("SIGNALHOOKS_TEST_DB_SUFFIX", "")
            },
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

REDIS_URL = suite_redis_url()
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        # Unique per run: the suite only ever deletes under its own prefix.
        "KEY_PREFIX": f"signalhooks-bench-{os.getpid()}-{secrets.token_hex(4)}",
        # Round trips are counted (and checked) by the pytest benchmarks; the
        # instruction counts (benchmarks.instructions) leave the counting out, since it
        # costs the flush's socket calls a Python-level wrapper each.
        "OPTIONS": (
            {}
            if os.environ.get("SIGNALHOOKS_BENCH_UNCOUNTED")
            else {"CONNECTION_POOL_KWARGS": {"connection_class": CountingConnection}}
        ),
    }
}

_TASKS_MODULE = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
TASKS = {
    "default": {"BACKEND": f"{_TASKS_MODULE}.backends.immediate.ImmediateBackend"},
    "queued": {"BACKEND": "django_tasks_db.DatabaseBackend"},
}
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = "bench@example.com"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING_CONFIG = None
