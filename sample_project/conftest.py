"""Fixtures of the sample project's tests (run with ``--ds=sample_project.settings``).

settings.py gives the tests a throwaway Redis (tests/redis_server.py) with a key
prefix of their own, and an in-memory SQLite database (pytest-django).
"""

from __future__ import annotations

import django
import pytest
from django.core.cache import cache

MAILBOX = "sample_project.devtools.mail.MailboxBackend"


@pytest.fixture(autouse=True)
def test_settings(settings):
    """Mail goes to the mailbox page, as on the site (Django's test setup says locmem)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast
    if django.VERSION >= (6, 1):
        settings.MAILERS = {"default": {"BACKEND": MAILBOX}}
    else:
        settings.EMAIL_BACKEND = MAILBOX


@pytest.fixture(autouse=True)
def clean_cache():
    """Each test starts with an empty cache; only the tests' own key prefix is deleted."""
    cache.delete_pattern("*")
    yield
    cache.delete_pattern("*")


@pytest.fixture
def deliver_mail():
    """Return a function that works off the mail queue (the demo's db_worker) once."""
    from sample_project.devtools.worker import deliver_mail

    return deliver_mail


@pytest.fixture
def seeded(transactional_db):
    """The demo's users, posts and comments."""
    from sample_project.blog.seed import seed

    return seed()


@pytest.fixture(scope="session")
def live_site(django_db_setup, live_server):
    """pytest-django's live server, started once the test database exists.

    ``live_server`` does not depend on the database. Started first, it finds no in-memory
    SQLite connection to share with its request threads, so each request thread opens
    its own, which Django's in-memory guard never closes: Python 3.13 reports every one as
    ``ResourceWarning: unclosed database``. Started after, the threads share the test's.
    """
    return live_server
