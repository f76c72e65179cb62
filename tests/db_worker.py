"""A real django-tasks-db ``db_worker`` process on the test database, for the mail tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from django.db import connections

from signalhooks.models import WelcomeMail
from tests.redis_server import _die_with_parent


class Worker:
    """``manage.py db_worker --backend queued`` with tests.settings_worker."""

    def __init__(self, smtp_port: int, signalhooks: dict[str, Any] | None = None) -> None:
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings_worker",
            "SIGNALHOOKS_WORKER_DB": str(connections["default"].settings_dict["NAME"]),
            "SIGNALHOOKS_WORKER_SMTP_PORT": str(smtp_port),
            "SIGNALHOOKS_WORKER_SETTINGS": json.dumps(
                {"TASK_BACKEND": "queued", **(signalhooks or {})}
            ),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        command = [sys.executable, "-m", "django", "db_worker", "--backend", "queued"]
        self.process = subprocess.Popen(
            [*command, "--interval", "0.05", "--no-startup-delay", "--no-reload"],
            env=self.env,
            preexec_fn=_die_with_parent,
        )
        return self

    def kill(self) -> None:
        """``kill -9``: no handler, no cleanup, the task is left as it was."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


def wait_for_status(user_pk: Any, *statuses: str, timeout: float = 30) -> WelcomeMail:
    """Wait until the welcome mail of ``user_pk`` has one of ``statuses``; return its row."""
    deadline = time.monotonic() + timeout
    while True:
        record = WelcomeMail.objects.filter(user_pk=str(user_pk)).first()
        if record is not None and record.status in statuses:
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"welcome mail of user {user_pk}: {record} after {timeout}s")
        time.sleep(0.05)
