from __future__ import annotations

import contextlib
import logging
from io import StringIO

import django
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from signalhooks import user_registered
from signalhooks.mail import send_welcome
from signalhooks.models import WelcomeMail
from tests.redis_server import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def mail_server_down():
    """A real SMTP backend pointed at a port nobody listens on."""
    port = free_port()
    smtp = "django.core.mail.backends.smtp.EmailBackend"
    if django.VERSION >= (6, 1):  # MAILERS; EMAIL_* must not be read
        mailers = {
            **settings.MAILERS,
            "broken": {"BACKEND": smtp, "OPTIONS": {"port": port, "timeout": 1}},
        }
        with override_settings(MAILERS=mailers, SIGNALHOOKS={"MAILER": "broken"}):
            yield
    else:
        with override_settings(EMAIL_BACKEND=smtp, EMAIL_PORT=port, EMAIL_TIMEOUT=1):
            yield


def test_welcome_mail_after_commit_text_and_html():
    with transaction.atomic():
        user = User.objects.create_user("ada", "ada@example.com")
        assert mail.outbox == []
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.from_email == "site@example.com"
    assert message.subject == "Welcome to example.com, ada!"
    assert "welcome to example.com" in message.body
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html" and "<strong>example.com</strong>" in html
    assert WelcomeMail.objects.get(user_pk=str(user.pk)).status == "sent"


def test_welcome_mail_escapes_html_and_keeps_subject_on_one_line():
    User.objects.create_user("<script>x</script>\nBcc: evil", "ada@example.com")
    [message] = mail.outbox
    assert "\n" not in message.subject
    html = message.alternatives[0][0]
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_welcome_mail_settings():
    with override_settings(
        SIGNALHOOKS={"WELCOME_MAIL_FROM": "hi@example.com", "SITE_NAME": "Blog"}
    ):
        User.objects.create_user("ada", "ada@example.com")
    assert mail.outbox[0].from_email == "hi@example.com"
    assert mail.outbox[0].subject == "Welcome to Blog, ada!"
    with override_settings(SIGNALHOOKS={"WELCOME_MAIL": False}):
        User.objects.create_user("bob", "bob@example.com")
    assert len(mail.outbox) == 1


def test_welcome_mail_site_name_fallback():
    from django.contrib.sites.models import Site

    Site.objects.all().delete()
    User.objects.create_user("ada", "ada@example.com")
    assert mail.outbox[0].subject == "Welcome to our site, ada!"


def test_welcome_mail_skips_users_without_email(caplog):
    with caplog.at_level(logging.INFO, logger="signalhooks"):
        user = User.objects.create_user("ada")
    assert mail.outbox == []
    assert WelcomeMail.objects.get(user_pk=str(user.pk)).status == "skipped"
    assert any("no email address" in r.getMessage() for r in caplog.records)


def test_welcome_mail_one_per_user():
    user = User.objects.create_user("ada", "ada@example.com")
    user.save()
    user_registered.send(sender=User, user=user, request=None)  # a repeated signal
    assert send_welcome(user.pk) == "sent"  # a retried task
    assert len(mail.outbox) == 1


def test_welcome_mail_failure_never_fails_registration_and_is_retried(caplog):
    logs = caplog.at_level(logging.ERROR, logger="signalhooks")
    with mail_server_down(), logs, transaction.atomic():
        user = User.objects.create_user("ada", "ada@example.com", password="secret")
    assert User.objects.filter(pk=user.pk).exists()
    record = WelcomeMail.objects.get(user_pk=str(user.pk))
    assert record.status == "failed" and record.attempts == 1 and record.last_error
    assert str(record) == f"welcome mail for user {user.pk}: failed"
    assert any("retry with" in r.getMessage() for r in caplog.records)
    assert user.password not in caplog.text


def test_welcome_retry_command():
    with mail_server_down():
        user = User.objects.create_user("ada", "ada@example.com")
        out = StringIO()
        call_command("signalhooks", "welcome", "--retry", stdout=out)
        assert out.getvalue().splitlines() == [f"user {user.pk}: failed", "welcome mails: failed=1"]
    # The mail server is back.
    out = StringIO()
    call_command("signalhooks", "welcome", "--retry", stdout=out)
    assert out.getvalue().splitlines() == [f"user {user.pk}: sent", "welcome mails: sent=1"]
    assert len(mail.outbox) == 1
    out = StringIO()
    call_command("signalhooks", "welcome", "--retry", stdout=out)
    assert out.getvalue() == "welcome mails: sent=1\n"


def test_welcome_command_without_mails():
    out = StringIO()
    call_command("signalhooks", "welcome", stdout=out)
    assert out.getvalue() == "welcome mails: none\n"


def test_welcome_mail_for_a_user_gone_before_sending():
    assert send_welcome(12345) == "skipped"
