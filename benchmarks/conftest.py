from __future__ import annotations

import itertools

import pytest
from django.core.cache import caches

_names = itertools.count()


@pytest.fixture
def unique():
    """Return a fresh name on every call (usernames, slugs)."""
    return lambda prefix="n": f"{prefix}{next(_names)}"


@pytest.fixture(autouse=True)
def clean_cache():
    yield
    caches["default"].delete_pattern("*")  # only the benchmark's own KEY_PREFIX
