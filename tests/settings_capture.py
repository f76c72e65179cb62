"""Settings of the processes the database-capture tests start (tests/test_capture_outbox.py)."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import CACHES, DATABASES

# The test database and the cache key prefix of the run that started the process.
DATABASES["default"]["NAME"] = os.environ["SIGNALHOOKS_CAPTURE_DB"]
CACHES["default"]["KEY_PREFIX"] = os.environ["SIGNALHOOKS_CAPTURE_PREFIX"]
SIGNALHOOKS = {"CAPTURE": "database"}
