from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from io import StringIO

import django
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sites.models import Site
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from signalhooks import user_registered
from signalhooks.mail import STALE_AFTER, check_welcome_mail, send_welcome
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
            "default": {"BACKEND": smtp, "OPTIONS": {"host": "127.0.0.1", "port": port}},
        }
        with override_settings(MAILERS=mailers):
            yield
    else:
        with override_settings(EMAIL_BACKEND=smtp, EMAIL_PORT=port, EMAIL_TIMEOUT=1):
            yield


@contextlib.contextmanager
def templates(tmp_path, **files):
    """Project templates in ``tmp_path`` that override the app's."""
    for name, text in files.items():
        path = tmp_path / "signalhooks" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    engine = {**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}
    with override_settings(TEMPLATES=[engine]):
        yield


def status(user):
    return WelcomeMail.objects.get(user_pk=str(user.pk)).status


def test_welcome_mail_after_commit_text_and_html():
    with transaction.atomic():
        user = User.objects.create_user("ada", "ada@example.com")
        assert mail.outbox == []
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.from_email == "site@example.com"
    assert message.subject == "Welcome to example.com, ada!"
    assert message.body.startswith("Hello ada,\n\nwelcome to example.com!")
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html" and "<strong>example.com</strong>" in html
    assert status(user) == "sent"
    record = WelcomeMail.objects.get()
    assert record.attempts == 1 and record.last_error == ""
    assert str(record) == f"welcome mail for user {user.pk}: sent"


def test_welcome_mail_escapes_html_only():
    User.objects.create_user("<script>alert(1)</script>", "ada@example.com")
    User.objects.create_user("O'Brien & Co", "bob@example.com")
    script, obrien = mail.outbox
    html = script.alternatives[0][0]
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Plain text is not HTML: nothing escaped in the subject or the text body.
    assert obrien.subject == "Welcome to example.com, O'Brien & Co!"
    assert "Hello O'Brien & Co," in obrien.body
    assert "O&#x27;Brien &amp; Co" in obrien.alternatives[0][0]


def test_welcome_mail_subject_is_one_line(tmp_path):
    subject = "Welcome\n{{ user.get_username }}\r\n  to {{ site_name }}\n\n"
    with templates(tmp_path, **{"welcome_subject.txt": subject}):
        User.objects.create_user("ada\nBcc: evil@example.com", "ada@example.com")
    [message] = mail.outbox
    assert message.subject == "Welcome ada Bcc: evil@example.com to example.com"
    assert message.recipients() == ["ada@example.com"]


def test_welcome_mail_templates_are_overridable(tmp_path):
    files = {
        "welcome.txt": "Hi {{ user.email }} from {{ site_name }}",
        "welcome.html": "<p>Hi {{ user.email }}</p>",
    }
    with templates(tmp_path, **files):
        User.objects.create_user("ada", "ada@example.com")
    [message] = mail.outbox
    assert message.body == "Hi ada@example.com from example.com"
    assert message.alternatives[0][0] == "<p>Hi ada@example.com</p>"


def test_welcome_mail_never_contains_the_password_hash(caplog):
    caplog.set_level(logging.DEBUG)
    user = User.objects.create_user("ada", "ada@example.com", password="secret")
    [message] = mail.outbox
    payload = message.message().as_bytes()
    assert user.password.encode() not in payload
    assert user.password not in caplog.text
    assert user.password.split("$")[-1] not in payload.decode()


def test_welcome_mail_settings():
    with override_settings(
        SIGNALHOOKS={"WELCOME_MAIL_FROM": "hi@example.com", "SITE_NAME": "Blog"}
    ):
        User.objects.create_user("ada", "ada@example.com")
    assert mail.outbox[0].from_email == "hi@example.com"
    assert mail.outbox[0].subject == "Welcome to Blog, ada!"


def test_welcome_mail_off(django_assert_num_queries):
    # The INSERT of the user, nothing else.
    with override_settings(SIGNALHOOKS={"WELCOME_MAIL": False}), django_assert_num_queries(1):
        User.objects.create(username="bob", email="bob@example.com")
    assert mail.outbox == []
    assert not WelcomeMail.objects.exists()


@pytest.mark.parametrize("how", ["no site row", "no SITE_ID"])
def test_welcome_mail_site_name_fallback(how):
    Site.objects.all().delete()
    with override_settings(SITE_ID=None if how == "no SITE_ID" else settings.SITE_ID):
        User.objects.create_user("ada", "ada@example.com")
    assert mail.outbox[0].subject == "Welcome to our site, ada!"


def test_welcome_mail_skips_users_without_email(caplog):
    caplog.set_level(logging.INFO, logger="signalhooks")
    user = User.objects.create_user("ada")
    assert mail.outbox == []
    assert status(user) == "skipped"
    assert WelcomeMail.objects.get().last_error == "no email address"
    assert f"no welcome mail for user {user.pk}: no email address" in caplog.text


def test_welcome_mail_skips_a_user_gone_before_sending(caplog):
    caplog.set_level(logging.INFO, logger="signalhooks")
    assert send_welcome(12345) == "skipped"
    assert WelcomeMail.objects.get(user_pk="12345").last_error == "no such user"
    assert "user 12345: the user no longer exists" in caplog.text


def test_welcome_mail_one_per_user():
    user = User.objects.create_user("ada", "ada@example.com")
    user.email = "other@example.com"
    user.save()  # re-saved
    user_registered.send(sender=User, user=user, request=None)  # a repeated signal
    assert send_welcome(user.pk) == "sent"  # a retried task
    assert len(mail.outbox) == 1
    assert WelcomeMail.objects.get().attempts == 1


def test_welcome_mail_failure_never_fails_registration_and_is_retried(caplog):
    caplog.set_level(logging.DEBUG)
    with mail_server_down(), transaction.atomic():
        user = User.objects.create_user("ada", "ada@example.com", password="secret")
    assert User.objects.filter(pk=user.pk).exists()
    record = WelcomeMail.objects.get(user_pk=str(user.pk))
    assert record.status == "failed" and record.attempts == 1
    assert record.last_error.startswith("ConnectionRefusedError")
    [failure] = [r for r in caplog.records if r.name == "signalhooks"]
    assert failure.levelno == logging.ERROR and failure.exc_info is not None
    assert "`manage.py signalhooks welcome --retry` sends it again" in failure.getMessage()
    assert user.password not in caplog.text and user.password not in record.last_error
    # The mail server is back: the next retry sends it, once.
    assert send_welcome(user.pk) == "sent"
    assert len(mail.outbox) == 1
    assert WelcomeMail.objects.get().attempts == 2


def test_welcome_retry_command():
    with mail_server_down():
        user = User.objects.create_user("ada", "ada@example.com")
        out = StringIO()
        call_command("signalhooks", "welcome", "--retry", stdout=out)
        assert out.getvalue().splitlines() == [f"user {user.pk}: failed", "welcome mails: failed=1"]
    out = StringIO()
    call_command("signalhooks", "welcome", "--retry", stdout=out)
    assert out.getvalue().splitlines() == [f"user {user.pk}: sent", "welcome mails: sent=1"]
    assert len(mail.outbox) == 1
    out = StringIO()
    call_command("signalhooks", "welcome", "--retry", stdout=out)
    assert out.getvalue() == "welcome mails: sent=1\n"


def test_welcome_retry_takes_up_lost_mails_only_when_stale():
    pending, sending, fresh = (
        User.objects.create(username=name, email=f"{name}@example.com")
        for name in ("pending", "sending", "fresh")
    )
    mail.outbox.clear()
    WelcomeMail.objects.filter(user_pk=str(pending.pk)).update(status="pending")
    WelcomeMail.objects.filter(user_pk=str(sending.pk)).update(status="sending")
    WelcomeMail.objects.filter(user_pk=str(fresh.pk)).update(
        status="sending", updated_at=timezone.now()
    )
    long_ago = timezone.now() - STALE_AFTER - timedelta(seconds=1)
    WelcomeMail.objects.exclude(user_pk=str(fresh.pk)).update(updated_at=long_ago)
    out = StringIO()
    call_command("signalhooks", "welcome", "--retry", stdout=out)
    assert sorted(m.to[0] for m in mail.outbox) == ["pending@example.com", "sending@example.com"]
    # A mail being sent right now is not sent twice, not even by a retried task.
    assert send_welcome(fresh.pk) == "sending"
    assert status(fresh) == "sending" and len(mail.outbox) == 2


def test_welcome_command_without_mails():
    out = StringIO()
    call_command("signalhooks", "welcome", stdout=out)
    assert out.getvalue() == "welcome mails: none\n"


def test_welcome_mail_mailer_alias():
    locmem = {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    mailers = {**getattr(settings, "MAILERS", {}), "welcome": locmem}
    with override_settings(MAILERS=mailers, SIGNALHOOKS={"MAILER": "welcome"}):
        assert check_welcome_mail() == []
        user = User.objects.create_user("ada", "ada@example.com")
    if django.VERSION >= (6, 1):
        [message] = mail.outbox
        assert message.sent_using == "welcome"
    else:  # no MAILERS before 6.1: the send fails, is recorded, and the check says why
        assert mail.outbox == []
        assert WelcomeMail.objects.get(user_pk=str(user.pk)).last_error.startswith("TypeError")


def test_welcome_mail_check_unknown_mailer():
    with override_settings(SIGNALHOOKS={"MAILER": "nope"}):
        [error] = check_welcome_mail()
    assert error.id == "signalhooks.E031"
    assert error.msg == "SIGNALHOOKS['MAILER'] is 'nope', which is not in settings.MAILERS."
    if django.VERSION >= (6, 1):
        assert error.hint == "Use one of: 'default', or None."
    else:
        assert "Django 5.2" in error.hint


def test_welcome_mail_check_broken_template(tmp_path):
    with templates(tmp_path, **{"welcome.html": "{% if %}"}):
        [error] = check_welcome_mail()
    assert error.id == "signalhooks.E032"
    assert "'signalhooks/welcome.html' cannot be loaded" in error.msg


def test_welcome_mail_checks_run_with_the_system_checks():
    from signalhooks.checks import check_hooks

    assert check_hooks() == []
    with override_settings(SIGNALHOOKS={"MAILER": "nope"}):
        assert [e.id for e in check_hooks()] == ["signalhooks.E031"]
    with override_settings(SIGNALHOOKS={"MAILER": "nope", "WELCOME_MAIL": False}):
        assert check_hooks() == []  # no welcome mail, nothing to check


def test_welcome_mail_repeated_signal_inside_a_transaction():
    user = User.objects.create_user("ada", "ada@example.com")
    with transaction.atomic():
        user_registered.send(sender=User, user=user, request=None)
        # The conflicting row did not break the transaction.
        assert User.objects.filter(pk=user.pk).exists()
    assert len(mail.outbox) == 1 and WelcomeMail.objects.count() == 1
