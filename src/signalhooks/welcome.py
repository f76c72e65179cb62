"""The welcome mail as a subscriber of the user signals.

``user_registered`` schedules the mail after commit, ``user_deleted`` forgets its
delivery row. The user lifecycle (:mod:`signalhooks.users`) knows nothing of the mail:
this module, installed by ``AppConfig.ready()``, connects to its signals and adds the
mail's system checks.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage, Error, Warning
from django.db import router, transaction
from django.db.models import Model
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import get_template

from .activation import activation_in_use, host_is_configured, request_origin
from .conf import conf
from .mail import HTML_TEMPLATE, SUBJECT_TEMPLATE, TEXT_TEMPLATE, forget_welcome
from .models import WelcomeMail
from .observe import mail_queued, observers
from .tasks import check_task_backend, enqueue_welcome
from .users import user_deleted, user_registered


def schedule_welcome(user_pk: Any, origin: str | None = None) -> None:
    """Queue the welcome mail of ``user_pk`` after the current transaction commits.

    ``origin``: ``"scheme://host"`` of the registering request, for absolute links.

    This is all the request path pays: with a queued task backend, the enqueue (one
    INSERT with a database backend); the delivery row, rendering and sending happen
    in the task.
    """
    transaction.on_commit(
        partial(enqueue_welcome, user_pk, origin), using=router.db_for_write(WelcomeMail)
    )
    if observers:
        mail_queued(user_pk)


def _welcome(*, user: Model, request: Any = None, **kwargs: Any) -> None:
    if conf.WELCOME_MAIL:
        # The request is gone when the mail is sent (after commit, maybe in a worker):
        # keep its scheme and host for the activation link.
        schedule_welcome(user.pk, request_origin(request))


def _forget_welcome(*, user: Model, **kwargs: Any) -> None:
    if conf.WELCOME_MAIL:
        forget_welcome(user.pk)


def check(**kwargs: Any) -> list[CheckMessage]:
    """The system check of the welcome mail, when it is on."""
    return check_welcome_mail() if conf.WELCOME_MAIL else []


def install() -> None:
    """Subscribe the welcome mail to the user signals (from ``AppConfig.ready()``)."""
    user_registered.connect(_welcome, dispatch_uid="signalhooks.welcome_mail")
    user_deleted.connect(_forget_welcome, dispatch_uid="signalhooks.welcome_mail")
    checks.register(check)


def check_welcome_mail() -> list[CheckMessage]:
    """Report a mailer alias or a task backend that does not exist, or a broken template."""
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
    if not host_is_configured() and activation_in_use():
        errors.append(
            Warning(
                "Activation links in welcome mails sent without a request (a user created "
                "in the admin, a shell or a script, a retry by `manage.py signalhooks "
                "welcome --retry`) have no scheme and host: neither SIGNALHOOKS['SITE_URL'] "
                "nor django.contrib.sites with SITE_ID is configured.",
                hint="Set SIGNALHOOKS['SITE_URL'] = 'https://your.domain', or install "
                "django.contrib.sites and set SITE_ID.",
                id="signalhooks.W033",
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
