"""Run by tests/test_users.py in a subprocess with AUTH_USER_MODEL = usersapp.Member.

Member has a UUID primary key, its username in ``handle`` and its email address in
``contact`` (``EMAIL_FIELD``): nothing may assume ``auth.User``.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from signalhooks import user_deleted, user_registered, user_updated
from signalhooks.models import WelcomeMail

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def seen():
    events = []
    for signal in (user_registered, user_updated, user_deleted):
        signal.connect(
            lambda signal, **kw: events.append((signal, kw)), weak=False, dispatch_uid="t"
        )
    yield events
    for signal in (user_registered, user_updated, user_deleted):
        signal.disconnect(dispatch_uid="t")


def test_custom_user_model_lifecycle_and_welcome_mail(seen):
    member_model = get_user_model()
    assert member_model._meta.label == "usersapp.Member"
    with transaction.atomic():
        member = member_model.objects.create_user("ada", "ada@example.com", password="pw")
        assert seen == []
    assert seen == [(user_registered, {"sender": member_model, "user": member, "request": None})]
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.subject == "Welcome to example.com, ada!"
    assert WelcomeMail.objects.get(user_pk=str(member.pk)).status == "sent"

    seen.clear()
    old_hash = member.password
    member.contact = "new@example.com"
    member.is_staff = True
    member.set_password("other")
    member.save()
    member.groups.add(Group.objects.create(name="staff"))
    changes = [kw["changes"] for _, kw in seen]
    assert changes == [
        {
            "password": ("<redacted>", "<redacted>"),
            "contact": ("ada@example.com", "new@example.com"),
            "is_staff": (False, True),
        },
        {"groups": ([], [Group.objects.get().pk])},
    ]
    assert old_hash not in repr(seen) and member.password not in repr(seen)

    seen.clear()
    pk = member.pk
    member.delete()
    [(signal, kwargs)] = seen
    assert signal is user_deleted and kwargs["user"].pk == pk


def test_custom_user_model_queued_worker():
    with override_settings(SIGNALHOOKS={"TASK_BACKEND": "queued"}):
        member = get_user_model().objects.create_user("bob", "bob@example.com")
    assert mail.outbox == []
    call_command("db_worker", "--batch", "--backend", "queued", "--no-startup-delay", verbosity=0)
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    assert WelcomeMail.objects.get(user_pk=str(member.pk)).status == "sent"
