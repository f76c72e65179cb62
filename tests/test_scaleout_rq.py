"""The welcome mail through a real queue besides the database: django-tasks-rq and RQ.

django-tasks-rq is a backend of the django-tasks backport (which it installs); on
Django 6 ``django.tasks`` drives it just the same. A throwaway ``redis-server`` holds
the queue; django-rq's own ``rqworker`` command (with RQ's ``SimpleWorker``, which runs
jobs in its own process instead of a fork, so the test database is the worker's too)
takes the job from Redis and sends the mail.
"""

from __future__ import annotations

import importlib.util
import logging
import os

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.test import override_settings

from signalhooks.models import WelcomeMail
from signalhooks.tasks import framework
from tests.redis_server import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)

if importlib.util.find_spec("django_tasks_rq") is None and not os.environ.get("CI"):
    # Under CI the test dependencies include it: the import below fails instead.
    pytest.skip("pip install django-tasks-rq to run the RQ tests", allow_module_level=True)

import redis  # noqa: E402
import rq  # noqa: E402
from django_rq.management.commands import rqworker  # noqa: E402

QUEUE = "default"  # the queue signalhooks' task is declared on


@pytest.fixture(scope="module")
def queue_redis():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def rq_backend(queue_redis):
    """Send the welcome mail through django-tasks-rq on the throwaway Redis."""
    tasks = {
        "default": {"BACKEND": f"{framework.__name__}.backends.immediate.ImmediateBackend"},
        "rq": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": [QUEUE]},
    }
    with override_settings(
        TASKS=tasks,
        RQ_QUEUES={QUEUE: {"URL": queue_redis.url}},
        SIGNALHOOKS={"TASK_BACKEND": "rq"},
    ):
        connection = redis.Redis.from_url(queue_redis.url)
        yield rq.Queue(QUEUE, connection=connection)
        connection.flushdb()  # the throwaway server's only database: the next test starts empty


def run_worker():
    # django-rq's command, as a deployment runs it (its app need not be installed for that).
    call_command(
        rqworker.Command(), QUEUE, "--burst", "--worker-class", "rq.SimpleWorker",
        "--job-class", "django_tasks_rq.Job", verbosity=0,
    )  # fmt: skip


def test_rq_registration_queues_the_mail_in_redis_and_the_worker_sends_it(rq_backend):
    user = User.objects.create_user("ada", "ada@example.com")
    # The request path only queued it: a job in Redis, no mail yet.
    assert mail.outbox == []
    assert rq_backend.count == 1
    [job] = rq_backend.get_jobs()
    assert job.func_name == "signalhooks.tasks.send_welcome_mail"
    assert list(job.args) == [str(user.pk)]
    # The delivery row is the worker's to write: the request paid the enqueue only.
    assert not WelcomeMail.objects.filter(user_pk=str(user.pk)).exists()
    run_worker()
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert rq_backend.count == 0
    assert WelcomeMail.objects.get(user_pk=str(user.pk)).status == "sent"
    assert rq.job.Job.fetch(job.id, connection=rq_backend.connection).return_value() == "sent"


def test_rq_job_run_twice_sends_one_mail(rq_backend):
    user = User.objects.create_user("ada", "ada@example.com")
    [job] = rq_backend.get_jobs()
    rq_backend.enqueue_job(job)  # redelivered, as after a worker lost the first run
    run_worker()
    assert len(mail.outbox) == 1
    assert WelcomeMail.objects.get(user_pk=str(user.pk)).status == "sent"


def test_rq_queue_down_registers_the_user_and_keeps_the_mail_pending(
    rq_backend, queue_redis, caplog
):
    queue_redis.stop()
    try:
        with caplog.at_level(logging.ERROR, logger="signalhooks"):
            user = User.objects.create_user("ada", "ada@example.com")
    finally:
        queue_redis.start()
    assert User.objects.filter(username="ada").exists()
    assert WelcomeMail.objects.get(user_pk=str(user.pk)).status == "pending"
    assert "could not queue the welcome mail" in caplog.text
    assert mail.outbox == []
