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
def seeded(transactional_db):
    """The demo's users, posts and comments."""
    from sample_project.blog.seed import seed

    return seed()
