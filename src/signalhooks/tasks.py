"""The welcome mail as a task of Django's tasks framework, where there is one.

Django 6.0+ has ``django.tasks``; on Django 5.2 the ``django-tasks`` backport
provides the same API. Without either, the mail is sent right after commit.
"""

from __future__ import annotations

import importlib
from typing import Any

from .conf import conf
from .mail import send_welcome


def _task_decorator() -> Any:
    """Return ``django.tasks.task``, the ``django-tasks`` backport's, or ``None``."""
    for module in ("django.tasks", "django_tasks"):
        try:
            return importlib.import_module(module).task
        except ImportError:  # pragma: no cover - import fallback between Django versions
            continue
    return None  # pragma: no cover - neither is installed


task = _task_decorator()

if task is not None:  # pragma: no branch - the test dependencies provide one

    @task  # type: ignore[untyped-decorator]
    def send_welcome_mail(user_pk: str) -> str:
        """Send the welcome mail of the user with primary key ``user_pk`` (as text)."""
        return send_welcome(user_pk)

else:  # pragma: no cover
    send_welcome_mail = None


def enqueue_welcome(user_pk: Any) -> None:
    """Queue the welcome mail on ``SIGNALHOOKS["TASK_BACKEND"]`` (or send it now)."""
    if send_welcome_mail is None:  # pragma: no cover - neither django.tasks nor django-tasks
        send_welcome(user_pk)
        return
    send_welcome_mail.using(backend=conf.TASK_BACKEND).enqueue(str(user_pk))
