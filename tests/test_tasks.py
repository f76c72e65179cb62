from __future__ import annotations

import logging
import time
from io import StringIO

import pytest
from allauth.account.signals import user_signed_up
from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import RequestFactory, override_settings
from django.test.signals import template_rendered
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from signalhooks import user_registered
from signalhooks.mail import message_id
from signalhooks.models import WelcomeMail
from signalhooks.tasks import check_task_backend, framework, send_welcome_mail
from tests.db_worker import Worker, wait_for_status
from tests.redis_server import free_port
from tests.smtp_server import SMTPServer, sending_to

pytestmark = pytest.mark.django_db(transaction=True)

QUEUED = {"TASK_BACKEND": "queued"}


def run_worker():
    call_command("db_worker", "--batch", "--backend", "queued", "--no-startup-delay", verbosity=0)


@pytest.fixture
def rendered():
    """Names of the templates rendered while the test runs."""
    names = []

    def on_render(sender, template, **kwargs):
        names.append(template.name)

    template_rendered.connect(on_render, dispatch_uid="test-rendered")
    yield names
    template_rendered.disconnect(dispatch_uid="test-rendered")


@pytest.fixture
def enqueued():
    """Task results enqueued while the test runs."""
    results = []

    def on_enqueued(sender, task_result, **kwargs):
        results.append(task_result)

    framework.signals.task_enqueued.connect(on_enqueued, dispatch_uid="test-enqueued")
    yield results
    framework.signals.task_enqueued.disconnect(dispatch_uid="test-enqueued")


def test_task_is_a_module_level_task_taking_the_pk_as_text():
    assert send_welcome_mail.module_path == "signalhooks.tasks.send_welcome_mail"
    assert framework.__name__ in ("django.tasks", "django_tasks")  # 6.0+ / the 5.2 backport


def test_task_immediate_backend_sends_right_after_commit(enqueued):
    with transaction.atomic():
        user = User.objects.create_user("ada", "ada@example.com")
        assert mail.outbox == [] and enqueued == []
    assert len(mail.outbox) == 1
    [result] = enqueued
    assert result.args == [str(user.pk)] and result.return_value == "sent"


def test_task_retried_sends_no_second_mail():
    user = User.objects.create_user("ada", "ada@example.com")
    result = send_welcome_mail.enqueue(str(user.pk))
    assert result.status == "SUCCESSFUL" and result.return_value == "sent"
    assert len(mail.outbox) == 1


def test_task_queued_request_path_renders_and_sends_nothing(rendered, django_assert_num_queries):
    # The user and the queued task: two INSERTs. The delivery row is the worker's.
    with override_settings(SIGNALHOOKS=QUEUED), django_assert_num_queries(2):
        user = User.objects.create(username="ada", email="ada@example.com")
    assert mail.outbox == [] and rendered == []
    assert not WelcomeMail.objects.exists()
    [task] = DBTaskResult.objects.all()
    assert task.status == "READY" and task.task_path == "signalhooks.tasks.send_welcome_mail"
    assert task.args_kwargs == {"args": [str(user.pk)], "kwargs": {}}
    run_worker()
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert "signalhooks/welcome.html" in rendered
    assert WelcomeMail.objects.get(user_pk=str(user.pk)).status == "sent"
    task.refresh_from_db()
    assert task.status == "SUCCESSFUL" and task.return_value == "sent"


def test_task_queued_twice_sends_one_mail():
    with override_settings(SIGNALHOOKS=QUEUED):
        user = User.objects.create_user("ada", "ada@example.com")
        user_registered.send(sender=User, user=user, request=None)  # a repeated signal
    assert DBTaskResult.objects.count() == 2
    run_worker()
    assert len(mail.outbox) == 1
    assert sorted(DBTaskResult.objects.values_list("return_value", flat=True)) == ["sent", "sent"]


def test_task_carries_the_registering_requests_host_to_the_worker_and_its_retry():
    request = RequestFactory().get("/signup/", HTTP_HOST="shop.example.org", secure=True)
    with override_settings(SIGNALHOOKS=QUEUED), sending_to(free_port()):
        with transaction.atomic():
            user = User.objects.create_user("ada", "ada@example.com", is_active=False)
            user_signed_up.send(sender=User, request=request, user=user)
        run_worker()  # fails: its retry is queued with the host
    first, later = DBTaskResult.objects.order_by("enqueued_at")
    args = {"args": [str(user.pk), "https://shop.example.org"], "kwargs": {}}
    assert first.args_kwargs == later.args_kwargs == args
    with override_settings(SIGNALHOOKS=QUEUED):
        DBTaskResult.objects.filter(pk=later.pk).update(run_after=timezone.now())
        run_worker()
    [message] = mail.outbox
    assert "https://shop.example.org/accounts/activate/" in message.body


def test_task_failed_send_queues_its_retry_for_when_it_is_due():
    with override_settings(SIGNALHOOKS=QUEUED), sending_to(free_port()):  # nobody listens
        user = User.objects.create_user("ada", "ada@example.com")
        run_worker()  # the deferred retry is not due yet: the batch worker leaves it
    record = WelcomeMail.objects.get()
    assert record.status == "failed" and record.attempts == 1
    first, later = DBTaskResult.objects.order_by("enqueued_at")
    assert (first.status, first.return_value) == ("SUCCESSFUL", "failed")
    assert (later.status, later.run_after) == ("READY", record.retry_at)
    assert later.args_kwargs == {"args": [str(user.pk)], "kwargs": {}}
    assert round((later.run_after - record.claimed_at).total_seconds()) == 300


def test_task_backend_none_sends_on_commit_without_a_task(enqueued):
    with override_settings(SIGNALHOOKS={"TASK_BACKEND": None}):
        with transaction.atomic():
            User.objects.create_user("ada", "ada@example.com")
            assert mail.outbox == []
        assert check_task_backend() == []
    assert len(mail.outbox) == 1 and enqueued == []


def test_task_backend_that_cannot_queue_a_retry_leaves_it_due(caplog):
    caplog.set_level(logging.ERROR, logger="signalhooks")
    with override_settings(SIGNALHOOKS={"TASK_BACKEND": "missing"}), sending_to(free_port()):
        user = User.objects.create_user("ada", "ada@example.com")
        assert WelcomeMail.objects.get().status == "pending"
        with pytest.raises(CommandError, match="1 welcome mail"):
            call_command("signalhooks", "welcome", "--retry", stdout=StringIO())
    record = WelcomeMail.objects.get()
    assert record.status == "failed" and record.retry_at is not None
    assert "could not queue the retry of the welcome mail" in caplog.text
    assert f"user {user.pk} failed (attempt 1 of 4); due again at" in caplog.text


def test_task_backend_that_cannot_queue_fails_nothing(caplog):
    caplog.set_level(logging.ERROR, logger="signalhooks")
    with override_settings(SIGNALHOOKS={"TASK_BACKEND": "missing"}):
        [error] = check_task_backend()
        with transaction.atomic():
            user = User.objects.create_user("ada", "ada@example.com")
    assert error.id == "signalhooks.E030"
    assert error.msg == "SIGNALHOOKS['TASK_BACKEND'] is 'missing', which is not in settings.TASKS."
    assert error.hint.startswith("Use one of: 'default', 'queued'; or None")
    assert User.objects.filter(pk=user.pk).exists() and mail.outbox == []
    assert f"could not queue the welcome mail for user {user.pk}" in caplog.text
    # Not forgotten: kept as pending, which the retry command sends.
    record = WelcomeMail.objects.get(user_pk=str(user.pk))
    assert record.status == "pending"
    call_command("signalhooks", "welcome", "--retry", stdout=StringIO())
    assert len(mail.outbox) == 1


# -- a real db_worker process and a real SMTP server process --------------------------


@pytest.fixture
def smtp(tmp_path):
    """An SMTP server process (not started yet: ``smtp.start()``), killed after the test."""
    server = SMTPServer(tmp_path / "smtp")
    yield server
    server.kill()


@pytest.fixture
def workers():
    """Start ``db_worker`` processes: ``workers(smtp_port, **SIGNALHOOKS)``; killed after."""
    started = []

    def start(smtp_port, **signalhooks):
        started.append(Worker(smtp_port, signalhooks).start())
        return started[-1]

    yield start
    for worker in started:
        worker.kill()


def retry(**signalhooks):
    """Run ``manage.py signalhooks welcome --retry`` here; return its output lines."""
    out = StringIO()
    with override_settings(SIGNALHOOKS=signalhooks):
        call_command("signalhooks", "welcome", "--retry", stdout=out)
    return out.getvalue().splitlines()


def register(name):
    with override_settings(SIGNALHOOKS=QUEUED):
        return User.objects.create_user(name, f"{name}@example.com")


def test_task_worker_killed_mid_send_is_resent_once(smtp, workers):
    smtp.start()
    smtp.stall("data")
    worker = workers(smtp.port)
    user = register("ada")
    smtp.wait_until_stalled()
    record = wait_for_status(user.pk, "sending")
    worker.kill()  # kill -9 while it waits for the reply to DATA
    smtp.wait_until_abandoned()
    smtp.release()
    assert DBTaskResult.objects.get().status == "RUNNING"  # lost with its worker
    assert smtp.delivered() == []
    assert record.claimed_at is not None
    with sending_to(smtp.port):
        # Younger than WELCOME_MAIL_CLAIM_TIMEOUT (600 s): it could be a live worker.
        assert retry() == ["welcome mails: sending=1"]
        assert retry(WELCOME_MAIL_CLAIM_TIMEOUT=0) == [
            f"user {user.pk}: sent",
            "welcome mails: sent=1",
        ]
        assert retry(WELCOME_MAIL_CLAIM_TIMEOUT=0) == ["welcome mails: sent=1"]
    [delivered] = smtp.delivered()
    assert delivered["To"] == "ada@example.com"
    assert WelcomeMail.objects.get().attempts == 2


def test_task_next_welcome_task_resends_a_mail_whose_worker_died(smtp, workers):
    smtp.start()
    smtp.stall("data")
    worker = workers(smtp.port, WELCOME_MAIL_CLAIM_TIMEOUT=1)
    ada = register("ada")
    smtp.wait_until_stalled()
    worker.kill()
    smtp.wait_until_abandoned()
    smtp.release()
    time.sleep(1.1)  # ada's claim is older than the timeout now
    workers(smtp.port, WELCOME_MAIL_CLAIM_TIMEOUT=1)
    bob = register("bob")
    # Nobody ran a command: bob's task took ada's lost mail up after its own.
    assert wait_for_status(bob.pk, "sent").attempts == 1
    assert wait_for_status(ada.pk, "sent").attempts == 2
    assert sorted(m["To"] for m in smtp.delivered()) == ["ada@example.com", "bob@example.com"]


def test_task_resend_after_a_lost_reply_has_the_same_message_id(smtp, workers):
    """At least once: a worker killed after the server took the mail sends it again."""
    smtp.start()
    smtp.stall("reply")
    worker = workers(smtp.port)
    user = register("ada")
    smtp.wait_until_stalled()
    worker.kill()
    smtp.release()
    assert len(smtp.delivered()) == 1  # accepted, but the worker never heard so
    with sending_to(smtp.port):
        assert retry(WELCOME_MAIL_CLAIM_TIMEOUT=0)[0] == f"user {user.pk}: sent"
    first, second = smtp.delivered()
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"] == message_id(WelcomeMail.objects.get(), "site@example.com")


def test_task_failed_send_retries_itself_later(smtp, workers):
    workers(smtp.port, WELCOME_MAIL_RETRY_DELAY=2)  # no SMTP server yet
    user = register("ada")
    record = wait_for_status(user.pk, "failed")
    assert record.attempts == 1 and record.last_error.startswith("ConnectionRefusedError")
    # The task queued its own retry (right after recording the failure), deferred to
    # the backoff's due time.
    deadline = time.monotonic() + 30
    while DBTaskResult.objects.count() < 2:
        assert time.monotonic() < deadline, "no retry was queued"
        time.sleep(0.05)
    first, later = DBTaskResult.objects.order_by("enqueued_at")[:2]
    assert later.args_kwargs == {"args": [str(user.pk)], "kwargs": {}}
    assert later.run_after == record.retry_at
    smtp.start()
    # Attempt 2 after 2 s, 3 after 4 more: whichever found the server up sent it, once.
    assert wait_for_status(user.pk, "sent").attempts in (2, 3)
    [delivered] = smtp.delivered()
    assert delivered["To"] == "ada@example.com"
    first.refresh_from_db()
    assert first.return_value == "failed"


def test_task_taken_but_lost_before_writing_its_row_is_resent(smtp):
    """A worker dies between taking the task and the task's first statement."""
    user = register("ada")
    task = DBTaskResult.objects.get()
    task.claim("killed-worker")  # what db_worker does before it runs a task
    assert not WelcomeMail.objects.exists()
    smtp.start()
    with sending_to(smtp.port):
        assert retry() == ["welcome mails: none"]  # it may be running still
        assert retry(WELCOME_MAIL_CLAIM_TIMEOUT=0) == [
            f"user {user.pk}: sent",
            "welcome mails: sent=1",
        ]
        assert retry(WELCOME_MAIL_CLAIM_TIMEOUT=0) == ["welcome mails: sent=1"]
    assert len(smtp.delivered()) == 1


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL's table locks")
def test_task_worker_killed_before_writing_the_row_is_resent(smtp, workers):
    user = register("ada")  # queued; no worker runs yet
    smtp.start()
    with transaction.atomic(), connection.cursor() as cursor:
        # The worker can take the task, but the task's INSERT of the row waits.
        cursor.execute(f"LOCK TABLE {WelcomeMail._meta.db_table} IN SHARE MODE")
        worker = workers(smtp.port)
        deadline = time.monotonic() + 30
        while DBTaskResult.objects.get().status != "RUNNING":
            assert time.monotonic() < deadline, "the worker took no task"
            time.sleep(0.05)
        worker.kill()
        # The dead worker's server process may still run its INSERT, blocked on our
        # lock, and commit it once we let go (PostgreSQL notices a dead client only
        # when it next writes to it). End it while it waits, as a crash would.
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname ="
            " current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
    assert not WelcomeMail.objects.exists()
    with sending_to(smtp.port):
        assert retry(WELCOME_MAIL_CLAIM_TIMEOUT=0)[0] == f"user {user.pk}: sent"
    assert len(smtp.delivered()) == 1
