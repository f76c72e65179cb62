"""The sample project as the load test serves it: PostgreSQL, our own Redis, a queued mail.

Everything comes from ``sample_project.settings``; only what a deployment changes is
changed here. The cache is Redis *unconditionally*: the sample falls back to an
in-process cache when Redis does not answer at start-up, which would hide the very
fault ("workers reloaded during an outage") this test injects.
"""

from __future__ import annotations

import os

import dj_database_url
import django
from sample_project.settings import *  # noqa: F403
from sample_project.settings import INSTALLED_APPS, SIGNALHOOKS, TASKS

DEBUG = False
DEVTOOLS = False

DATABASES = {"default": dj_database_url.parse(os.environ["LOADTEST_DATABASE_URL"])}

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ["LOADTEST_REDIS_URL"],
        "KEY_PREFIX": "loadtest",
        # The sample's: a hung Redis (CLIENT PAUSE) costs a cache call a second, not a hang.
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    }
}

# The welcome mail goes through a real queue and a separate worker process
# (``manage.py db_worker``), which the test kills while it sends.
# The blog's own notices (the sample's "mail" queue) go out right after commit here: the
# worker is the welcome mail's alone, so a kill always interrupts a welcome mail.
if "django_tasks_db" not in INSTALLED_APPS:
    INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]
TASKS = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend"},
    "mail": TASKS["default"],  # the sample's immediate backend
}
_MAIL_BACKEND = "loadtest.mail.SlowMailboxBackend"
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": _MAIL_BACKEND}}
else:
    EMAIL_BACKEND = _MAIL_BACKEND

# The test measures signalhooks, not PBKDF2 (hundreds of ms of CPU per registration).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

SIGNALHOOKS = {**SIGNALHOOKS, "TASK_BACKEND": "default"}
# A send interrupted by the killed worker is taken up again after this many seconds.
SIGNALHOOKS["WELCOME_MAIL_CLAIM_TIMEOUT"] = float(os.environ.get("LOADTEST_CLAIM_TIMEOUT", "10"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "signalhooks": {"handlers": ["console"], "level": "ERROR"},
        # Each 500's traceback, into gunicorn.log beside the report.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
