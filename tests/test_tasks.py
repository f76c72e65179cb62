from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from django.test.signals import template_rendered
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from signalhooks import user_registered
from signalhooks.models import WelcomeMail
from signalhooks.tasks import check_task_backend, framework, send_welcome_mail

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
    # The user, its WelcomeMail row, the queued task: three INSERTs.
    with override_settings(SIGNALHOOKS=QUEUED), django_assert_num_queries(3):
        user = User.objects.create(username="ada", email="ada@example.com")
    assert mail.outbox == [] and rendered == []
    assert WelcomeMail.objects.get(user_pk=str(user.pk)).status == "pending"
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


def test_task_backend_none_sends_on_commit_without_a_task(enqueued):
    with override_settings(SIGNALHOOKS={"TASK_BACKEND": None}):
        with transaction.atomic():
            User.objects.create_user("ada", "ada@example.com")
            assert mail.outbox == []
        assert check_task_backend() == []
    assert len(mail.outbox) == 1 and enqueued == []


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
    # Not forgotten: once it is stale, the retry command sends it.
    record = WelcomeMail.objects.get(user_pk=str(user.pk))
    assert record.status == "pending"
    WelcomeMail.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    call_command("signalhooks", "welcome", "--retry", stdout=StringIO())
    assert len(mail.outbox) == 1
