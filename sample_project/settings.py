"""Settings of the sample project: SQLite, Redis if one answers, mail into a mailbox page.

Run it with ``make demo`` (or ``python sample_project/manage.py runserver``).
Environment: ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``), ``DJANGO_DEBUG``
(``1`` by default: this is a development site).
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "signalhooks-sample-project-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

# pytest (8.2+) sets PYTEST_VERSION for its whole session: the tests get a throwaway
# Redis and a key prefix of their own below.
TESTING = "PYTEST_VERSION" in os.environ

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # The welcome mail goes through Django's tasks framework (the backport before 6.0).
    *(["django_tasks"] if django.VERSION < (6, 0) else []),
    "django_tasks_db",
    "signalhooks",
    "sample_project.blog",
    "sample_project.devtools",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# django-debug-toolbar with signalhooks' panel: in development, when it is installed
# (`pip install "django-signalhooks[debug-toolbar]"`; the test extra has it).
try:
    import debug_toolbar  # noqa: F401
except ImportError:
    DEBUG_TOOLBAR = False
else:
    DEBUG_TOOLBAR = DEBUG
if DEBUG_TOOLBAR:
    from debug_toolbar.settings import PANELS_DEFAULTS

    INSTALLED_APPS.append("debug_toolbar")
    MIDDLEWARE.insert(0, "debug_toolbar.middleware.DebugToolbarMiddleware")
    DEBUG_TOOLBAR_PANELS = [
        *PANELS_DEFAULTS,
        "signalhooks.contrib.debug_toolbar.panel.SignalhooksPanel",
    ]
    INTERNAL_IPS = ["127.0.0.1", "::1"]
    # A first visit shows the site, with only the toolbar's handle at the edge: open,
    # the toolbar would cover the page's sidebar (the invalidations panel). Once opened
    # or closed, the browser remembers it (localStorage).
    DEBUG_TOOLBAR_CONFIG = {"SHOW_COLLAPSED": True}

ROOT_URLCONF = "sample_project.urls"
WSGI_APPLICATION = "sample_project.wsgi.application"

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
                "sample_project.devtools.context_processors.devtools",
            ]
        },
    }
]

# SQLite, always; the tests too (pytest-django gives them an in-memory database).
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
STATIC_URL = "static/"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# -- cache: Redis when one answers, else an in-process cache -----------------------------


def redis_problem(url: str) -> str | None:
    """Return ``None`` if the Redis at ``url`` answers a PING, else why it did not."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    return None


if TESTING:
    # The tests never touch a Redis they did not start (or REDIS_URL's, only under
    # their own key prefix): tests/redis_server.py starts a throwaway redis-server.
    from tests.redis_server import suite_redis_url

    REDIS_URL = suite_redis_url()
    CACHE_KEY_PREFIX = f"sample-test-{uuid.uuid4().hex[:8]}"
    REDIS_PROBLEM = None
else:
    REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    CACHE_KEY_PREFIX = "signalhooks-sample"
    REDIS_PROBLEM = redis_problem(REDIS_URL)

if REDIS_PROBLEM is None:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            # Everything the site stores is under this prefix; the demo only ever
            # deletes keys under it (django-redis' delete_pattern is prefix-scoped).
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "signalhooks-sample",
        }
    }
    # Said once per run: runserver's autoreloader child inherits the marker.
    if not os.environ.get("SAMPLE_REDIS_WARNED"):
        os.environ["SAMPLE_REDIS_WARNED"] = "1"
        print(
            f"\n*** No Redis answered at {REDIS_URL} ({REDIS_PROBLEM}).\n"
            "*** The sample project uses an in-process cache instead: every page works and\n"
            "*** invalidations still happen, but only inside each process. To use Redis,\n"
            "*** start redis-server (apt-get install redis-server / brew install redis)\n"
            "*** or set REDIS_URL=redis://host:port/db.\n",
            file=sys.stderr,
        )

# Shown in the page footer.
CACHE_IS_REDIS = REDIS_PROBLEM is None

# -- mail: into the mailbox page (rows of devtools.Mail) and to the console --------------

DEFAULT_FROM_EMAIL = "blog@sample.signalhooks.test"
_MAIL_BACKEND = "sample_project.devtools.mail.MailboxBackend"
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": _MAIL_BACKEND}}
else:
    EMAIL_BACKEND = _MAIL_BACKEND
# The mailbox and the invalidations page exist in development only.
DEVTOOLS = DEBUG

_TASKS_MODULE = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
# Mail never goes out inside a request: the welcome mail and the hooks' mail are tasks
# on "mail", a queue in the database that `manage.py db_worker --backend mail` works
# off (`make demo` starts one; the tests run it when they want the mail delivered).
TASKS = {
    "default": {"BACKEND": f"{_TASKS_MODULE}.backends.immediate.ImmediateBackend"},
    "mail": {"BACKEND": "django_tasks_db.DatabaseBackend"},
}

# SITE_URL: the host of the activation links in welcome mails (`make demo` serves here).
SIGNALHOOKS = {
    "SITE_NAME": "Signalhooks Sample Blog",
    "SITE_URL": "http://127.0.0.1:8000",
    "TASK_BACKEND": "mail",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "signalhooks": {"handlers": ["console"], "level": "WARNING"},
        "sample_project": {"handlers": ["console"], "level": "INFO"},
    },
}
