"""The welcome mail: render it, send it once per user, record how that went.

Each user has one :class:`~signalhooks.models.WelcomeMail` row. A send *claims* it
first (an INSERT, or a conditional UPDATE of a row that is due), so two workers,
a repeated signal or a retried task never send a mail that went out already. A
claim is dated: one older than ``WELCOME_MAIL_CLAIM_TIMEOUT`` without an outcome
was lost with its worker and may be claimed again. Delivery is at least once: a
worker killed after the mail server accepted the mail, but before the row says
``sent``, leaves a claim that is sent again; the stable ``Message-ID`` lets mail
servers and clients recognise the second copy.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import IntegrityError, router, transaction
from django.db.models import F, Model, Q
from django.template import Context
from django.template.backends.django import Template as DjangoTemplate
from django.template.loader import get_template
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .activation import activation_url, current_site
from .conf import conf
from .models import WelcomeMail
from .users import email_address

logger = logging.getLogger("signalhooks")

SUBJECT_TEMPLATE = "signalhooks/welcome_subject.txt"
TEXT_TEMPLATE = "signalhooks/welcome.txt"
HTML_TEMPLATE = "signalhooks/welcome.html"

_Status = WelcomeMail.Status


def site_name() -> str:
    """Return ``SIGNALHOOKS["SITE_NAME"]``, else the current Site's name, else ""."""
    if conf.SITE_NAME:
        return str(conf.SITE_NAME)
    site = current_site()
    return str(site.name) if site is not None else ""


def _render_text(name: str, context: dict[str, Any]) -> str:
    """Render a plain-text template with autoescape off: text is not HTML.

    The welcome templates are Django templates (the app's, or a project's override).
    """
    template = cast(DjangoTemplate, get_template(name))
    return template.template.render(Context(context, autoescape=False))


def message_id(record: WelcomeMail, sender: str) -> str:
    """Return the ``Message-ID`` of the welcome mail ``record``: the same for every resend.

    Keyed on the row (one per registration) and SECRET_KEY, so two sites sending from
    one domain, or a new user who got a deleted user's pk, never share one.
    """
    digest = salted_hmac(
        "signalhooks.welcome.message-id", f"{record.pk}:{record.user_pk}", algorithm="sha256"
    )
    domain = sender.rpartition("@")[2].strip("<> ") or "localhost"
    return f"<welcome.{digest.hexdigest()[:24]}@{domain}>"


def render(
    user: Model, record: WelcomeMail | None = None, origin: str | None = None
) -> EmailMultiAlternatives:
    """Return the welcome mail of ``user``: a text body with an HTML alternative.

    With its delivery ``record``, the mail carries that record's stable ``Message-ID``;
    ``origin`` is the scheme and host of the request that registered the user, if any.
    """
    context = {
        "user": user,
        "site_name": site_name(),
        "activation_url": activation_url(user, origin),
    }
    # One line whatever the template or the user's name holds (no header injection).
    subject = " ".join(_render_text(SUBJECT_TEMPLATE, context).split())
    text = _render_text(TEXT_TEMPLATE, context)
    html = get_template(HTML_TEMPLATE).render(context)
    sender = conf.WELCOME_MAIL_FROM or settings.DEFAULT_FROM_EMAIL
    headers = {"Message-ID": message_id(record, sender)} if record is not None else {}
    message = EmailMultiAlternatives(subject, text, sender, [email_address(user)], headers=headers)
    message.attach_alternative(html, "text/html")
    return message


def _deliver(message: EmailMultiAlternatives) -> None:
    if conf.MAILER is None:
        # The default mailer: MAILERS["default"] on Django 6.1, EMAIL_BACKEND on 5.2.
        message.send()
    else:
        # A Django 6.1 MAILERS alias (system check signalhooks.E031 on 5.2).
        message.send(using=conf.MAILER)  # type: ignore[call-arg, unused-ignore]


def keep_pending(user_pk: Any) -> None:
    """Record the welcome mail of ``user_pk`` as pending, for ``welcome --retry``."""
    _insert(WelcomeMail(user_pk=str(user_pk)))


def _insert(record: WelcomeMail) -> bool:
    """INSERT ``record``; return ``False`` if the user has a row already."""
    using = router.db_for_write(WelcomeMail)
    # Inside a transaction a failed INSERT would break it: take a savepoint then only.
    savepoint = (
        transaction.atomic(using=using)
        if transaction.get_connection(using).in_atomic_block
        else contextlib.nullcontext()
    )
    try:
        with savepoint:
            record.save(using=using, force_insert=True)
    except IntegrityError:
        return False
    return True


def _lost(now: datetime) -> Q:
    """Rows claimed longer than ``WELCOME_MAIL_CLAIM_TIMEOUT`` ago without an outcome."""
    timeout = timedelta(seconds=conf.WELCOME_MAIL_CLAIM_TIMEOUT)
    return Q(status=_Status.SENDING, claimed_at__lte=now - timeout)


def _claimable(now: datetime) -> Q:
    """Rows a send may take: waiting, failed, or claimed and lost."""
    return Q(status__in=[_Status.PENDING, _Status.FAILED]) | _lost(now)


def _claim(key: str) -> WelcomeMail | str:
    """Claim the row of user ``key`` for one send; return it, or the status that forbids it."""
    now = timezone.now()
    record = WelcomeMail(user_pk=key, status=_Status.SENDING, attempts=1, claimed_at=now)
    if _insert(record):
        return record
    mails = WelcomeMail.objects.filter(user_pk=key)
    claimed = mails.filter(_claimable(now)).update(
        status=_Status.SENDING,
        attempts=F("attempts") + 1,
        claimed_at=now,
        retry_at=None,
        updated_at=now,
    )
    if not claimed:
        return str(mails.values_list("status", flat=True).get())
    return mails.get()


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one send of a welcome mail came to; scheduling decides from it what is next."""

    status: str
    #: On a failure: what the mail server raised, which attempt it was, when the next
    #: one is due (``None``: out of attempts), and whether another send took over.
    error: Exception | None = None
    attempts: int = 0
    retry_at: datetime | None = None
    taken_over: bool = False


def deliver_welcome(user_pk: Any, origin: str | None = None) -> Delivery:
    """Send the welcome mail of one user unless it went out already; say how it went.

    Safe to call any number of times, concurrently too (see the module docstring). A
    failing mail server is recorded, never raised: the row says when the next attempt
    is due, until ``WELCOME_MAIL_MAX_ATTEMPTS`` sends were made; queueing that attempt
    is scheduling's job (:func:`signalhooks.tasks.send_welcome`). ``origin`` as for
    :func:`render`.
    """
    key = str(user_pk)
    record = _claim(key)
    if isinstance(record, str):
        return Delivery(record)
    user = get_user_model()._default_manager.filter(pk=user_pk).first()
    if user is None:
        logger.info("signalhooks: no welcome mail for user %s: the user no longer exists", key)
        _finish(record, _Status.SKIPPED, "no such user")
        return Delivery(_Status.SKIPPED.value)
    address = email_address(user)
    if not address:
        logger.info("signalhooks: no welcome mail for user %s: no email address", key)
        _finish(record, _Status.SKIPPED, "no email address")
        return Delivery(_Status.SKIPPED.value)
    try:
        # An address set through the ORM is not validated: a comma would mail a second
        # address, a line break would be refused by Django at every attempt.
        validate_email(address)
    except ValidationError as error:
        reason = f"invalid email address {address!r}: {' '.join(error.messages)}"
        logger.warning("signalhooks: no welcome mail for user %s: %s", key, reason)
        _finish(record, _Status.SKIPPED, reason)
        return Delivery(_Status.SKIPPED.value)
    try:
        _deliver(render(user, record, origin))
    except Exception as error:
        return _failed(record, error)
    _finish(record, _Status.SENT, "")
    return Delivery(_Status.SENT.value)


def _failed(record: WelcomeMail, error: Exception) -> Delivery:
    attempts, limit = record.attempts, conf.WELCOME_MAIL_MAX_ATTEMPTS
    retry_at = None
    if attempts < limit:
        delay = conf.WELCOME_MAIL_RETRY_DELAY * 2 ** (attempts - 1)
        retry_at = timezone.now() + timedelta(seconds=delay)
    finished = _finish(record, _Status.FAILED, f"{type(error).__name__}: {error}", retry_at)
    return Delivery(_Status.FAILED.value, error, attempts, retry_at, taken_over=not finished)


def _finish(record: WelcomeMail, status: str, error: str, retry_at: datetime | None = None) -> bool:
    """Record the outcome of the send that claimed ``record``; ``False`` if it lost the claim.

    A send that was taken over after the claim timeout must not write its outcome over
    the one of the send that took over (a late "failed" would mail the user again).
    """
    return bool(
        WelcomeMail.objects.filter(pk=record.pk, claimed_at=record.claimed_at).update(
            status=status, last_error=error, retry_at=retry_at, updated_at=timezone.now()
        )
    )


def due(*, everything: bool = False) -> Q:
    """Return the rows a retry sends: never queued, failed and due, or claimed and lost.

    ``everything`` adds the failed mails whose next attempt is not due yet and those out
    of attempts.
    """
    now = timezone.now()
    failed = Q(status=_Status.FAILED)
    if not everything:
        failed &= Q(retry_at__lte=now)
    return Q(status=_Status.PENDING) | failed | _lost(now)


def forget_welcome(user_pk: Any) -> None:
    """Delete the delivery row of a deleted user: a new user given its pk gets a mail."""
    WelcomeMail.objects.filter(user_pk=str(user_pk)).delete()
