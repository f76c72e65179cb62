"""The welcome mail as a task of Django's tasks framework, where there is one.

Django 6.0+ has ``django.tasks``; on Django 5.2 the ``django-tasks`` backport
provides the same API. Without either (or with ``SIGNALHOOKS["TASK_BACKEND"]`` set
to ``None``) the mail is sent right after commit, in the process that committed.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from django.core.checks import CheckMessage, Error

from .conf import conf
from .mail import send_welcome

logger = logging.getLogger("signalhooks")


def _framework() -> Any:
    """Return ``django.tasks`` (Django 6.0+), the ``django_tasks`` backport, or ``None``."""
    for name in ("django.tasks", "django_tasks"):
        try:
            return importlib.import_module(name)
        except ImportError:  # pragma: no cover - Django 5.2 has no django.tasks: try the backport
            continue
    return None  # pragma: no cover - neither is installed; the test dependencies have one


framework = _framework()

if framework is not None:  # pragma: no branch - the test dependencies provide one

    @framework.task  # type: ignore[untyped-decorator]
    def send_welcome_mail(user_pk: str) -> str:
        """Send the welcome mail of the user with primary key ``user_pk`` (as text)."""
        return send_welcome(user_pk)

else:  # pragma: no cover - neither django.tasks nor django-tasks is installed
    send_welcome_mail = None


def enqueue_welcome(user_pk: Any) -> None:
    """Queue the welcome mail on ``SIGNALHOOKS["TASK_BACKEND"]``, or send it now.

    Runs in an on_commit callback: a backend that cannot take the task is logged and
    the mail stays pending for ``manage.py signalhooks welcome --retry``, rather than
    failing a request whose user is already committed.
    """
    try:
        if send_welcome_mail is None or conf.TASK_BACKEND is None:
            send_welcome(user_pk)
        else:
            send_welcome_mail.using(backend=conf.TASK_BACKEND).enqueue(str(user_pk))
    except Exception:
        logger.exception(
            "signalhooks: could not queue the welcome mail for user %s; it stays pending "
            "and `manage.py signalhooks welcome --retry` sends it",
            user_pk,
        )


def check_task_backend() -> list[CheckMessage]:
    """Report a ``SIGNALHOOKS["TASK_BACKEND"]`` that is not in ``settings.TASKS``."""
    alias = conf.TASK_BACKEND
    if alias is None or framework is None:
        return []
    configured = framework.task_backends.settings
    if alias in configured:
        return []
    return [
        Error(
            f"SIGNALHOOKS['TASK_BACKEND'] is {alias!r}, which is not in settings.TASKS.",
            hint=f"Use one of: {', '.join(map(repr, configured))}; or None to send the "
            "welcome mail right after commit, without a task.",
            id="signalhooks.E030",
        )
    ]
