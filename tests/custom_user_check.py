"""Run by tests/test_users.py in a subprocess with AUTH_USER_MODEL = usersapp.Member."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction

from signalhooks import user_registered

pytestmark = pytest.mark.django_db(transaction=True)


def test_custom_user_model_registration_and_welcome_mail():
    seen = []
    user_registered.connect(lambda **kw: seen.append(kw["user"]), weak=False, dispatch_uid="t")
    member_model = get_user_model()
    assert member_model._meta.label == "usersapp.Member"
    with transaction.atomic():
        member = member_model.objects.create_user("ada", "ada@example.com", nickname="A")
        assert seen == []
    assert seen == [member]
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
