"""The welcome mail: render, send once per user, record the outcome."""

from __future__ import annotations

import logging
from typing import Any

import django
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

from .conf import conf
from .models import WelcomeMail

logger = logging.getLogger("signalhooks")


def site_name() -> str:
    """Return ``SIGNALHOOKS["SITE_NAME"]``, else the current Site's name, else a default."""
    if conf.SITE_NAME:
        return str(conf.SITE_NAME)
    try:
        site = apps.get_model("sites", "Site")
        return str(site.objects.get_current().name)
    except (LookupError, ObjectDoesNotExist):  # sites not installed, or no Site row
        return "our site"


def render(user: Any) -> EmailMultiAlternatives:
    """Return the welcome mail for ``user``: text body plus HTML alternative."""
    context = {"user": user, "site_name": site_name()}
    # Whatever the template or the username holds, a subject is one line.
    subject = " ".join(render_to_string("signalhooks/welcome_subject.txt", context).split())
    text = render_to_string("signalhooks/welcome.txt", context)
    html = render_to_string("signalhooks/welcome.html", context)
    sender = conf.WELCOME_MAIL_FROM or settings.DEFAULT_FROM_EMAIL
    message = EmailMultiAlternatives(subject, text, sender, [user.email])
    message.attach_alternative(html, "text/html")
    return message


def _deliver(message: EmailMultiAlternatives) -> None:
    if django.VERSION >= (6, 1):  # pragma: no cover - Django 6.1+: MAILERS
        message.send(using=conf.MAILER)
    else:  # pragma: no cover - Django 5.2: EMAIL_BACKEND
        message.send()


def send_welcome(user_pk: Any) -> str:
    """Send the welcome mail of one user unless it went out already; return the status.

    Safe to call any number of times: the row is claimed with a conditional
    UPDATE, so a repeated signal or a retried task never sends a second mail.
    """
    record, _ = WelcomeMail.objects.get_or_create(user_pk=str(user_pk))
    claimed = WelcomeMail.objects.filter(
        pk=record.pk, status__in=[WelcomeMail.Status.PENDING, WelcomeMail.Status.FAILED]
    ).update(status=WelcomeMail.Status.SENDING)
    if not claimed:
        return WelcomeMail.objects.get(pk=record.pk).status
    user = get_user_model()._default_manager.filter(pk=user_pk).first()
    if user is None or not getattr(user, "email", ""):
        logger.info("signalhooks: no welcome mail for user %s: no email address", user_pk)
        _finish(record, WelcomeMail.Status.SKIPPED, "no email address")
        return WelcomeMail.Status.SKIPPED
    try:
        _deliver(render(user))
    except Exception as error:
        logger.exception(
            "signalhooks: welcome mail for user %s failed; "
            "retry with `manage.py signalhooks welcome --retry`",
            user_pk,
        )
        _finish(record, WelcomeMail.Status.FAILED, f"{type(error).__name__}: {error}")
        return WelcomeMail.Status.FAILED
    _finish(record, WelcomeMail.Status.SENT, "")
    return WelcomeMail.Status.SENT


def _finish(record: WelcomeMail, status: str, error: str) -> None:
    WelcomeMail.objects.filter(pk=record.pk).update(
        status=status, last_error=error, attempts=record.attempts + 1
    )


def retry_failed() -> dict[str, str]:
    """Send again every welcome mail that failed or never left; return ``{user pk: status}``."""
    stuck = WelcomeMail.objects.filter(
        status__in=[WelcomeMail.Status.FAILED, WelcomeMail.Status.PENDING]
    ).values_list("user_pk", flat=True)
    return {pk: send_welcome(pk) for pk in list(stuck)}


def schedule_welcome(user_pk: Any, using: str | None = None) -> None:
    """Record the mail as pending and hand it to the task queue after commit."""
    from .tasks import enqueue_welcome

    # One INSERT, not get_or_create's SELECT + INSERT: this runs on the request path.
    WelcomeMail.objects.bulk_create([WelcomeMail(user_pk=str(user_pk))], ignore_conflicts=True)
    transaction.on_commit(lambda: enqueue_welcome(user_pk), using=using)
