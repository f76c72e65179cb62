"""Settings for Django's own test suite with signalhooks: Django's tests/test_sqlite.py (of
the version under test) plus the cache the rules flush to and the runner that compares the
result with the known differences.
"""

from __future__ import annotations

import os

from test_sqlite import *  # noqa: F403 - Django's own settings for its suite

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
