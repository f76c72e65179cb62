from __future__ import annotations

import itertools
import sqlite3
from importlib.metadata import PackageNotFoundError, version

import django
import pytest
from django.core.cache import caches

_names = itertools.count()

#: Filled in by the ``environment`` fixture, written into the JSON's machine_info.
ENVIRONMENT: dict[str, str] = {}

PACKAGES = [
    "signalhooks",
    "django-redis",
    "redis",
    "django-lifecycle",
    "django-lifecycle-hooks",
    "django-model-utils",
    "django-dirtyfields",
    "pytest-benchmark",
]


@pytest.fixture(scope="session", autouse=True)
def environment(django_db_setup, django_db_blocker):
    """Record the versions a result depends on: Django, database, Redis, the peers."""
    from django.db import connection
    from django_redis import get_redis_connection

    ENVIRONMENT["django"] = django.get_version()
    for package in PACKAGES:
        try:
            ENVIRONMENT[package] = version(package)
        except PackageNotFoundError:
            ENVIRONMENT[package] = "not installed"
    with django_db_blocker.unblock():
        if connection.vendor == "sqlite":
            ENVIRONMENT["database"] = f"SQLite {sqlite3.sqlite_version} (in memory)"
        else:
            with connection.cursor() as cursor:
                cursor.execute("SELECT version()")
                ENVIRONMENT["database"] = cursor.fetchone()[0].split(" on ")[0]
    ENVIRONMENT["redis server"] = get_redis_connection("default").info("server")["redis_version"]


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["signalhooks_environment"] = dict(ENVIRONMENT)


@pytest.fixture
def unique():
    """Return a fresh name on every call (usernames, slugs)."""
    return lambda prefix="n": f"{prefix}{next(_names)}"


@pytest.fixture(autouse=True)
def clean_cache():
    yield
    caches["default"].delete_pattern("*")  # only the benchmark's own KEY_PREFIX
