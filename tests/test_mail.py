from __future__ import annotations

import contextlib
import logging
import re
import threading
from datetime import timedelta
from io import StringIO

import django
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sites.models import Site
from django.core import checks, mail
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.test import modify_settings, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from signalhooks import user_registered
from signalhooks.mail import keep_pending, message_id
from signalhooks.models import WelcomeMail
from signalhooks.tasks import framework, send_welcome
from signalhooks.welcome import check_welcome_mail
from tests.redis_server import free_port
from tests.smtp_server import SMTPServer, sending_to

pytestmark = pytest.mark.django_db(transaction=True)


def mail_server_down():
    """A real SMTP backend pointed at a port nobody listens on."""
    return sending_to(free_port())


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


@pytest.fixture
def enqueued():
    """Task results enqueued while the test runs."""
    results = []

    def on_enqueued(sender, task_result, **kwargs):
        results.append(task_result)

    framework.signals.task_enqueued.connect(on_enqueued, dispatch_uid="test-enqueued")
    yield results
    framework.signals.task_enqueued.disconnect(dispatch_uid="test-enqueued")


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
    assert record.claimed_at is not None and record.retry_at is None
    assert str(record) == f"welcome mail for user {user.pk}: sent"
    assert message.extra_headers["Message-ID"] == message_id(record, "site@example.com")
    assert re.fullmatch(
        r"<welcome\.[0-9a-f]{24}@example\.com>", message_id(record, "x@example.com")
    )


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


def test_welcome_mail_text_is_never_html_escaped_even_in_overrides(tmp_path):
    files = {
        "welcome_subject.txt": "Welcome to {{ site_name }}, {{ user.get_username }}!",
        "welcome.txt": "Hello {{ user.get_username }} from {{ site_name }}",
        "welcome.html": "<p>Hello {{ user.get_username }} from {{ site_name }}</p>",
    }
    with override_settings(SIGNALHOOKS={"SITE_NAME": "Smith & Sons"}):
        User.objects.create_user("o'neil", "oneil@example.com")  # the shipped templates
        with templates(tmp_path, **files):  # overrides without {% autoescape off %}
            User.objects.create_user("<b>o'neil</b>", "b@example.com")
    shipped, overridden = mail.outbox
    assert shipped.subject == "Welcome to Smith & Sons, o'neil!"
    assert "Hello o'neil," in shipped.body and "the Smith & Sons team" in shipped.body
    assert overridden.subject == "Welcome to Smith & Sons, <b>o'neil</b>!"
    assert overridden.body == "Hello <b>o'neil</b> from Smith & Sons"
    html = overridden.alternatives[0][0]
    assert html == "<p>Hello &lt;b&gt;o&#x27;neil&lt;/b&gt; from Smith &amp; Sons</p>"


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
        bob = User.objects.create(username="bob", email="bob@example.com")
    assert mail.outbox == []
    assert not WelcomeMail.objects.exists()
    # Nor on delete: nothing for a mail that is off.
    off = override_settings(SIGNALHOOKS={"WELCOME_MAIL": False})
    with off, CaptureQueriesContext(connection) as queries:
        User.objects.filter(pk=bob.pk).delete()
    assert queries and not [q for q in queries if "welcomemail" in q["sql"]]


@pytest.mark.parametrize("how", ["no site row", "no SITE_ID", "no sites app"])
def test_welcome_mail_reads_well_without_a_site_name(how):
    if how == "no sites app":
        context = modify_settings(INSTALLED_APPS={"remove": "django.contrib.sites"})
    else:
        Site.objects.all().delete()
        context = override_settings(SITE_ID=None if how == "no SITE_ID" else settings.SITE_ID)
    with context:
        User.objects.create_user("ada", "ada@example.com")
    [message] = mail.outbox
    assert message.subject == "Welcome, ada!"
    assert message.body == (
        "Hello ada,\n\nwelcome! Your account is ready.\n\nSee you soon,\nthe team\n"
    )
    html = message.alternatives[0][0]
    assert "<p>welcome! Your account is ready.</p>" in html and "the team" in html
    assert "our site" not in message.message().as_string()


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


def retry(*flags, failing=0, **signalhooks):
    """Run ``manage.py signalhooks welcome --retry`` and return its output lines.

    With ``failing``, the command must fail (a non-zero exit for cron) naming that many
    failed sends.
    """
    out = StringIO()
    with override_settings(SIGNALHOOKS=signalhooks) if signalhooks else contextlib.nullcontext():
        if not failing:
            call_command("signalhooks", "welcome", "--retry", *flags, stdout=out)
            return out.getvalue().splitlines()
        with pytest.raises(CommandError, match=rf"^{failing} welcome mail\(s\) failed again"):
            call_command("signalhooks", "welcome", "--retry", *flags, stdout=out)
    return out.getvalue().splitlines()


def test_welcome_mail_failure_never_fails_registration_and_is_retried_when_due(caplog, enqueued):
    caplog.set_level(logging.DEBUG)
    with mail_server_down(), transaction.atomic():
        user = User.objects.create_user("ada", "ada@example.com", password="secret")
    assert User.objects.filter(pk=user.pk).exists()
    record = WelcomeMail.objects.get(user_pk=str(user.pk))
    assert record.status == "failed" and record.attempts == 1
    assert record.last_error.startswith("ConnectionRefusedError")
    # Due again after WELCOME_MAIL_RETRY_DELAY (300 s by default).
    assert round((record.retry_at - record.claimed_at).total_seconds()) == 300
    [failure] = [r for r in caplog.records if r.name == "signalhooks"]
    assert failure.levelno == logging.ERROR and failure.exc_info is not None
    assert f"user {user.pk} failed (attempt 1 of 4); due again at " in failure.getMessage()
    assert user.password not in caplog.text and user.password not in record.last_error
    # The immediate backend cannot run a task later: no retry was queued, the
    # scheduled `welcome --retry` sends it once due, not before.
    assert len(enqueued) == 1
    assert retry() == ["welcome mails: failed=1"]
    WelcomeMail.objects.update(retry_at=timezone.now())
    assert retry() == [f"user {user.pk}: sent", "welcome mails: sent=1"]
    assert len(mail.outbox) == 1
    assert WelcomeMail.objects.get().attempts == 2
    assert retry() == ["welcome mails: sent=1"]
    assert len(mail.outbox) == 1


def test_welcome_mail_retries_back_off_and_stop_after_the_last_attempt():
    limits = {"WELCOME_MAIL_MAX_ATTEMPTS": 3, "WELCOME_MAIL_RETRY_DELAY": 60}
    with mail_server_down(), override_settings(SIGNALHOOKS=limits):
        user = User.objects.create_user("ada", "ada@example.com")
        delays = []
        for _ in range(2):
            record = WelcomeMail.objects.get()
            delays.append(round((record.retry_at - record.claimed_at).total_seconds()))
            WelcomeMail.objects.update(retry_at=timezone.now())
            assert retry(failing=1) == [f"user {user.pk}: failed", "welcome mails: failed=1"]
        record = WelcomeMail.objects.get()
        assert delays == [60, 120]
        assert record.attempts == 3 and record.status == "failed" and record.retry_at is None
        assert retry() == ["welcome mails: failed=1"]  # out of attempts
    # A person fixed the mail server: --all sends what is out of attempts, once.
    assert retry("--all") == [f"user {user.pk}: sent", "welcome mails: sent=1"]
    assert len(mail.outbox) == 1 and WelcomeMail.objects.get().attempts == 4


def test_welcome_retry_exits_non_zero_when_a_send_failed():
    # cron and schedulers see a failed run: every send failed, or only some.
    with mail_server_down():
        ada = User.objects.create_user("ada", "ada@example.com")
        eve = User.objects.create_user("eve", "eve@example.com")
        lines = retry("--all", failing=2)
    assert lines == [f"user {ada.pk}: failed", f"user {eve.pk}: failed", "welcome mails: failed=2"]
    WelcomeMail.objects.filter(user_pk=str(eve.pk)).update(status="sent")
    with mail_server_down():
        assert retry("--all", failing=1)[0] == f"user {ada.pk}: failed"
    assert retry("--all") == [f"user {ada.pk}: sent", "welcome mails: sent=2"]


@pytest.mark.parametrize(
    "address", ["ada@example.com,eve@example.com", "ada@example.com\r\nBcc: eve@example.com"]
)
def test_welcome_mail_skips_an_address_django_refuses(address, caplog):
    caplog.set_level(logging.WARNING, logger="signalhooks")
    user = User.objects.create(username="ada", email=address)  # the ORM validates nothing
    reason = f"invalid email address {address!r}: Enter a valid email address."
    record = WelcomeMail.objects.get()
    assert (record.status, record.last_error, record.attempts) == ("skipped", reason, 1)
    assert f"no welcome mail for user {user.pk}: {reason}" in caplog.text
    assert retry("--all") == ["welcome mails: skipped=1"]  # not retried, ever
    assert mail.outbox == []


def test_welcome_retry_takes_up_claims_older_than_the_timeout():
    lost, fresh, pending = (
        User.objects.create(username=name, email=f"{name}@example.com")
        for name in ("lost", "fresh", "pending")
    )
    mail.outbox.clear()
    now = timezone.now()
    mails = WelcomeMail.objects.filter
    mails(user_pk=str(lost.pk)).update(status="sending", claimed_at=now - timedelta(seconds=601))
    mails(user_pk=str(fresh.pk)).update(status="sending", claimed_at=now - timedelta(seconds=590))
    # Never queued (the task backend was down): due at once.
    mails(user_pk=str(pending.pk)).update(status="pending", claimed_at=None)
    assert retry() == [
        f"user {lost.pk}: sent",
        f"user {pending.pk}: sent",
        "welcome mails: sending=1, sent=2",
    ]
    # A mail being sent right now is not sent twice, not even by a retried task.
    assert send_welcome(fresh.pk) == "sending"
    assert status(fresh) == "sending" and len(mail.outbox) == 2
    # 0: any claim (when no worker can be sending, e.g. all of them were stopped).
    with override_settings(SIGNALHOOKS={"WELCOME_MAIL_CLAIM_TIMEOUT": 0}):
        assert retry() == [f"user {fresh.pk}: sent", "welcome mails: sent=3"]
    assert sorted(m.to[0] for m in mail.outbox) == [
        "fresh@example.com",
        "lost@example.com",
        "pending@example.com",
    ]


def test_welcome_mail_message_id_is_the_same_for_every_send(tmp_path):
    server = SMTPServer(tmp_path / "smtp").start()
    try:
        with mail_server_down():
            user = User.objects.create_user("ada", "ada@example.com")
        with sending_to(server.port):
            WelcomeMail.objects.update(retry_at=timezone.now())
            assert retry() == [f"user {user.pk}: sent", "welcome mails: sent=1"]
            # A send after a lost reply (claim taken over): the same Message-ID.
            WelcomeMail.objects.update(status="sending", claimed_at=timezone.now())
            with override_settings(SIGNALHOOKS={"WELCOME_MAIL_CLAIM_TIMEOUT": 0}):
                assert retry() == [f"user {user.pk}: sent", "welcome mails: sent=1"]
    finally:
        server.kill()
    first, second = server.delivered()
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"] == message_id(WelcomeMail.objects.get(), "site@example.com")
    assert first["To"] == "ada@example.com" and first["Subject"] == "Welcome to example.com, ada!"


def test_welcome_mail_send_taken_over_does_not_record_its_outcome(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="signalhooks")
    with override_settings(SIGNALHOOKS={"WELCOME_MAIL": False}):
        user = User.objects.create_user("ada", "ada@example.com")
    keep_pending(user.pk)
    server = SMTPServer(tmp_path / "smtp").start()
    server.stall("data")
    outcome = []

    def stuck_send():
        try:
            outcome.append(send_welcome(user.pk))
        finally:
            connections.close_all()

    with sending_to(server.port):
        thread = threading.Thread(target=stuck_send)
        thread.start()
        try:
            server.wait_until_stalled()
            # Taken over (0: any claim) while the first send waits for its reply.
            assert retry(WELCOME_MAIL_CLAIM_TIMEOUT=0) == [
                f"user {user.pk}: sent",
                "welcome mails: sent=1",
            ]
        finally:
            server.kill()  # the stuck send fails now
            thread.join(30)
    assert outcome == ["failed"]
    # Its "failed" did not overwrite the "sent" of the send that took over.
    record = WelcomeMail.objects.get()
    assert (record.status, record.last_error, record.retry_at) == ("sent", "", None)
    assert "(attempt 1 of 4); another send has taken it over" in caplog.text
    assert len(server.delivered()) == 1


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
    def reported():
        return [e.id for e in checks.run_checks() if e.id.startswith("signalhooks.")]

    assert reported() == []
    with override_settings(SIGNALHOOKS={"MAILER": "nope"}):
        assert reported() == ["signalhooks.E031"]
    with override_settings(SIGNALHOOKS={"MAILER": "nope", "WELCOME_MAIL": False}):
        assert reported() == []  # no welcome mail, nothing to check


def test_welcome_mail_repeated_signal_inside_a_transaction():
    user = User.objects.create_user("ada", "ada@example.com")
    with transaction.atomic():
        user_registered.send(sender=User, user=user, request=None)
        # The conflicting row did not break the transaction.
        assert User.objects.filter(pk=user.pk).exists()
    assert len(mail.outbox) == 1 and WelcomeMail.objects.count() == 1
