from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from signalhooks.models import WelcomeMail
from signalhooks.tasks import send_welcome_mail

pytestmark = pytest.mark.django_db(transaction=True)


def test_task_is_a_module_level_task_taking_the_pk():
    assert send_welcome_mail.module_path == "signalhooks.tasks.send_welcome_mail"


def test_immediate_backend_sends_right_after_commit():
    with transaction.atomic():
        User.objects.create_user("ada", "ada@example.com")
        assert mail.outbox == []
    assert len(mail.outbox) == 1


def test_queued_backend_request_path_sends_nothing_worker_sends():
    with override_settings(SIGNALHOOKS={"TASK_BACKEND": "queued"}):
        user = User.objects.create_user("ada", "ada@example.com")
    assert mail.outbox == []
    assert WelcomeMail.objects.get(user_pk=str(user.pk)).status == "pending"
    call_command("db_worker", "--batch", "--backend", "queued", "--no-startup-delay", verbosity=0)
    assert len(mail.outbox) == 1
    assert WelcomeMail.objects.get(user_pk=str(user.pk)).status == "sent"
