"""Settings for Django's own test suite with signalhooks (Django's tests/test_sqlite.py plus
the cache the rules flush to and the runner that compares the result with the known list).
"""

from __future__ import annotations

import os

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3"},
    "other": {"ENGINE": "django.db.backends.sqlite3"},
}
SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
USE_TZ = False

# A real Redis (started by .ci/django_suite.py): the flush path users run in production
# (pipelined deletes, tag generations, patterns) runs after every commit of the suite.
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ["SIGNALHOOKS_SUITE_REDIS_URL"],
        "KEY_PREFIX": "django-suite",
    }
}
TEST_RUNNER = "signalhooks_known.KnownDifferencesRunner"
