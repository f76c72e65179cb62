"""Settings of the ``db_worker`` processes the mail tests start (tests/db_worker.py)."""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES
from tests.smtp_server import smtp_settings

# The test database of the run that started the worker, not a database of its own.
DATABASES["default"]["NAME"] = os.environ["SIGNALHOOKS_WORKER_DB"]
SIGNALHOOKS = json.loads(os.environ["SIGNALHOOKS_WORKER_SETTINGS"])
# Mail goes to the test's SMTP server process (MAILERS on 6.1, EMAIL_* before).
globals().update(smtp_settings(int(os.environ["SIGNALHOOKS_WORKER_SMTP_PORT"])))
