"""The welcome mail: render it, send it once per user, record how that went."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from functools import partial
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, router, transaction
from django.db.models import F, Model, Q
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import get_template, render_to_string
from django.utils import timezone

from .conf import conf
from .models import WelcomeMail
from .observe import mail_queued, observers
from .users import email_field_name

logger = logging.getLogger("signalhooks")

SUBJECT_TEMPLATE = "signalhooks/welcome_subject.txt"
TEXT_TEMPLATE = "signalhooks/welcome.txt"
HTML_TEMPLATE = "signalhooks/welcome.html"

#: A mail claimed for sending (or queued) this long ago without an outcome was lost
#: with its process or task: ``manage.py signalhooks welcome --retry`` takes it up.
STALE_AFTER = timedelta(minutes=15)

_Status = WelcomeMail.Status


def site_name() -> str:
    """Return ``SIGNALHOOKS["SITE_NAME"]``, else the current Site's name, else "our site"."""
    if conf.SITE_NAME:
        return str(conf.SITE_NAME)
    try:
        site = apps.get_model("sites", "Site")
        return str(site.objects.get_current().name)
    except (LookupError, ObjectDoesNotExist, ImproperlyConfigured):
        return "our site"  # sites not installed, no Site row, or no SITE_ID


def email_address(user: Model) -> str:
    """Return the address of ``user`` from its model's ``EMAIL_FIELD`` ("" if none)."""
    return str(getattr(user, email_field_name(type(user)), "") or "")


def render(user: Model) -> EmailMultiAlternatives:
    """Return the welcome mail of ``user``: a text body with an HTML alternative."""
    context = {"user": user, "site_name": site_name()}
    # One line whatever the template or the user's name holds (no header injection).
    subject = " ".join(render_to_string(SUBJECT_TEMPLATE, context).split())
    text = render_to_string(TEXT_TEMPLATE, context)
    html = render_to_string(HTML_TEMPLATE, context)
    sender = conf.WELCOME_MAIL_FROM or settings.DEFAULT_FROM_EMAIL
    message = EmailMultiAlternatives(subject, text, sender, [email_address(user)])
    message.attach_alternative(html, "text/html")
    return message


def _deliver(message: EmailMultiAlternatives) -> None:
    if conf.MAILER is None:
        # The default mailer: MAILERS["default"] on Django 6.1, EMAIL_BACKEND on 5.2.
        message.send()
    else:
        # A Django 6.1 MAILERS alias (system check signalhooks.E031 on 5.2).
        message.send(using=conf.MAILER)  # type: ignore[call-arg, unused-ignore]


def schedule_welcome(user_pk: Any) -> None:
    """Record the welcome mail of ``user_pk`` as pending and queue it after commit.

    This is all the request path pays: one INSERT here, and the enqueue (with a
    queued task backend, one more INSERT); rendering and sending happen in the task.
    """
    from .tasks import enqueue_welcome

    using = router.db_for_write(WelcomeMail)
    record = WelcomeMail(user_pk=str(user_pk))
    if transaction.get_connection(using).in_atomic_block:
        # A failed INSERT would break the caller's transaction: skip a conflict instead.
        WelcomeMail.objects.using(using).bulk_create([record], ignore_conflicts=True)
    else:
        # The usual case, after the commit: one INSERT (bulk_create would add BEGIN and
        # COMMIT around it). A row already there means the mail is under way or done.
        with contextlib.suppress(IntegrityError):
            record.save(using=using, force_insert=True)
    transaction.on_commit(partial(enqueue_welcome, user_pk), using=using)
    if observers:
        mail_queued(user_pk)


def send_welcome(user_pk: Any) -> str:
    """Send the welcome mail of one user unless it went out already; return the status.

    Safe to call any number of times, concurrently too: the row is claimed with a
    conditional UPDATE, so a repeated signal or a retried task never sends a second
    mail. A failing mail server is logged and recorded, never raised.
    """
    key = str(user_pk)
    mails = WelcomeMail.objects.filter(user_pk=key)
    WelcomeMail.objects.bulk_create([WelcomeMail(user_pk=key)], ignore_conflicts=True)
    now = timezone.now()
    claimable = Q(status__in=[_Status.PENDING, _Status.FAILED]) | Q(
        status=_Status.SENDING, updated_at__lt=now - STALE_AFTER
    )
    if not mails.filter(claimable).update(
        status=_Status.SENDING, attempts=F("attempts") + 1, updated_at=now
    ):
        return str(mails.values_list("status", flat=True).get())
    user = get_user_model()._default_manager.filter(pk=user_pk).first()
    if user is None:
        logger.info("signalhooks: no welcome mail for user %s: the user no longer exists", key)
        return _finish(mails, _Status.SKIPPED, "no such user")
    if not email_address(user):
        logger.info("signalhooks: no welcome mail for user %s: no email address", key)
        return _finish(mails, _Status.SKIPPED, "no email address")
    try:
        _deliver(render(user))
    except Exception as error:
        logger.exception(
            "signalhooks: the welcome mail for user %s failed; "
            "`manage.py signalhooks welcome --retry` sends it again",
            key,
        )
        return _finish(mails, _Status.FAILED, f"{type(error).__name__}: {error}")
    return _finish(mails, _Status.SENT, "")


def _finish(mails: Any, status: str, error: str) -> str:
    mails.update(status=status, last_error=error, updated_at=timezone.now())
    return status


def retry_failed() -> dict[str, str]:
    """Send the welcome mails that failed or got lost; return ``{user pk: status}``.

    Lost means pending or sending for longer than :data:`STALE_AFTER`: the task or
    the process that had it died. A mail that goes out twice cannot happen: each
    send claims its row first.
    """
    stale = timezone.now() - STALE_AFTER
    due = WelcomeMail.objects.filter(
        Q(status=_Status.FAILED)
        | Q(status__in=[_Status.PENDING, _Status.SENDING], updated_at__lt=stale)
    ).order_by("pk")
    return {pk: send_welcome(pk) for pk in list(due.values_list("user_pk", flat=True))}


def check_welcome_mail() -> list[CheckMessage]:
    """Report a mailer alias or a task backend that does not exist, or a broken template."""
    from .tasks import check_task_backend

    errors = check_task_backend()
    alias = conf.MAILER
    mailers = getattr(settings, "MAILERS", None)  # Django 6.1+
    if alias is not None and (mailers is None or alias not in mailers):
        errors.append(
            Error(
                f"SIGNALHOOKS['MAILER'] is {alias!r}, which is not in settings.MAILERS.",
                hint=(
                    "Use None (the default mailer) on Django 5.2, which sends through "
                    "EMAIL_BACKEND."
                    if mailers is None
                    else f"Use one of: {', '.join(map(repr, mailers))}, or None."
                ),
                id="signalhooks.E031",
            )
        )
    for name in (SUBJECT_TEMPLATE, TEXT_TEMPLATE, HTML_TEMPLATE):
        try:
            get_template(name)
        except (TemplateDoesNotExist, TemplateSyntaxError) as error:
            errors.append(
                Error(
                    f"The welcome mail template {name!r} cannot be loaded: {error}",
                    hint="Keep 'signalhooks' in INSTALLED_APPS with APP_DIRS templates, "
                    "or fix the project's override; SIGNALHOOKS['WELCOME_MAIL'] = False "
                    "turns the mail off.",
                    id="signalhooks.E032",
                )
            )
    return errors
