"""Scheduling the welcome mail: a task of Django's tasks framework, where there is one.

Delivery (:mod:`signalhooks.mail`) sends once and says how it went; this module
decides what comes next: queue the task, queue a failed mail's retry for when it is
due, or leave it to ``manage.py signalhooks welcome --retry``.

Django 6.0+ has ``django.tasks``; on Django 5.2 the ``django-tasks`` backport
provides the same API. Without either (or with ``SIGNALHOOKS["TASK_BACKEND"]`` set
to ``None``) the mail is sent right after commit, in the process that committed.
"""

from __future__ import annotations

import importlib
import logging
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.core.checks import CheckMessage, Error
from django.utils import timezone

from .conf import conf
from .mail import Delivery, deliver_welcome, due, keep_pending
from .models import WelcomeMail

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

#: How many other due mails (failed and due, lost claims) a task on a queued backend
#: sends after its own: the automatic retry of mails whose worker died.
SWEEP = 10

if framework is not None:  # pragma: no branch - the test dependencies provide one

    @framework.task(takes_context=True)  # type: ignore[untyped-decorator]
    def send_welcome_mail(context: Any, user_pk: str, origin: str | None = None) -> str:
        """Send the welcome mail of the user with primary key ``user_pk`` (as text).

        ``origin``: the scheme and host of the request that registered the user, if any.

        On a backend that runs tasks in a worker, also send up to :data:`SWEEP` other
        mails that are due: a mail whose worker was killed mid-send is taken up by the
        next welcome task once its claim is older than ``WELCOME_MAIL_CLAIM_TIMEOUT``.
        """
        status = send_welcome(user_pk, origin)
        if _can_defer(context.task_result.backend):
            retry_due(limit=SWEEP, lost_tasks=False)
        return status

else:  # pragma: no cover - neither django.tasks nor django-tasks is installed
    send_welcome_mail = None


def send_welcome(user_pk: Any, origin: str | None = None) -> str:
    """Send the welcome mail of one user unless it went out already; return the status.

    Safe to call any number of times, concurrently too. A failing mail server is
    logged and recorded, never raised; a failed send is retried automatically
    (:func:`retry_later`) until ``WELCOME_MAIL_MAX_ATTEMPTS`` sends were made.
    """
    delivery = deliver_welcome(user_pk, origin)
    if delivery.error is not None:
        _failed(str(user_pk), delivery, origin)
    return delivery.status


def _failed(key: str, delivery: Delivery, origin: str | None) -> None:
    """Queue the retry of a failed send when one is due, and log what happens next."""
    if delivery.taken_over:
        next_step = "another send has taken it over"
    elif delivery.retry_at is None:
        next_step = "out of attempts; `manage.py signalhooks welcome --retry --all` sends it"
    else:
        queued = retry_later(key, delivery.retry_at, origin)
        how = "retried automatically" if queued else "due again"
        next_step = f"{how} at {delivery.retry_at:%Y-%m-%d %H:%M:%S %Z}"
    logger.error(
        "signalhooks: the welcome mail for user %s failed (attempt %d of %d); %s",
        key,
        delivery.attempts,
        conf.WELCOME_MAIL_MAX_ATTEMPTS,
        next_step,
        exc_info=delivery.error,
    )


def _can_defer(alias: str | None) -> bool:
    """Tell whether the tasks backend ``alias`` runs tasks later (``run_after``)."""
    return (
        framework is not None
        and alias is not None
        and bool(framework.task_backends[alias].supports_defer)
    )


def enqueue_welcome(user_pk: Any, origin: str | None = None) -> None:
    """Queue the welcome mail on ``SIGNALHOOKS["TASK_BACKEND"]``, or send it now.

    Runs in an on_commit callback: a backend that cannot take the task is logged and
    the mail recorded as pending for ``manage.py signalhooks welcome --retry``, rather
    than failing a request whose user is already committed.
    """
    try:
        if send_welcome_mail is None or conf.TASK_BACKEND is None:
            send_welcome(user_pk, origin)
        else:
            task = send_welcome_mail.using(backend=conf.TASK_BACKEND)
            task.enqueue(str(user_pk), *_origin(origin))
    except Exception:
        logger.exception(
            "signalhooks: could not queue the welcome mail for user %s; it is kept as "
            "pending and `manage.py signalhooks welcome --retry` sends it",
            user_pk,
        )
        keep_pending(user_pk)


def _origin(origin: str | None) -> list[str]:
    """Return the task's optional argument: none without an origin (as older tasks have)."""
    return [] if origin is None else [origin]


def retry_later(user_pk: str, when: datetime, origin: str | None = None) -> bool:
    """Queue the welcome mail of ``user_pk`` to run at ``when``; ``False`` if no backend can.

    Only a backend that defers (``run_after``) can; with the immediate backend or none,
    ``manage.py signalhooks welcome --retry`` run from a scheduler sends it when due.
    """
    try:
        if not _can_defer(conf.TASK_BACKEND):
            return False
        task = send_welcome_mail.using(backend=conf.TASK_BACKEND, run_after=when)
        task.enqueue(user_pk, *_origin(origin))
    except Exception:
        logger.exception("signalhooks: could not queue the retry of the welcome mail")
        return False
    return True


def lost_before_claim(older_than: datetime) -> list[str]:
    """Return the user pks of welcome tasks a django-tasks-db worker took, then died with.

    With a queued backend the delivery row is written by the task's first statement:
    a worker killed after taking the task and before that statement leaves only its
    task, ``RUNNING`` since ``started_at``, and no row for ``welcome --retry`` to find.
    """
    if not apps.is_installed("django_tasks_db"):  # pragma: no cover - a test dependency
        return []
    from django_tasks_db.models import DBTaskResult

    running = DBTaskResult.objects.filter(
        task_path=send_welcome_mail.module_path, status="RUNNING", started_at__lte=older_than
    )
    pks = {str(args["args"][0]) for args in running.values_list("args_kwargs", flat=True)}
    known = set(WelcomeMail.objects.filter(user_pk__in=pks).values_list("user_pk", flat=True))
    return sorted(pks - known)


def retry_due(
    *, everything: bool = False, limit: int | None = None, lost_tasks: bool = True
) -> dict[str, str]:
    """Send the welcome mails that are due; return ``{user pk: status}``.

    Due: the rows of :func:`signalhooks.mail.due`, and with ``lost_tasks`` the mails of
    tasks a worker took and died with before it wrote their row, once older than
    ``WELCOME_MAIL_CLAIM_TIMEOUT`` (:func:`lost_before_claim`; it
    reads the task table, which has no index for it: the command's job, not each task's).
    """
    rows = WelcomeMail.objects.filter(due(everything=everything)).order_by("pk")
    keys = list(rows.values_list("user_pk", flat=True)[:limit])
    if lost_tasks:
        timeout = timedelta(seconds=conf.WELCOME_MAIL_CLAIM_TIMEOUT)
        keys += lost_before_claim(timezone.now() - timeout)
    return {key: send_welcome(key) for key in keys}


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
