from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from allauth.account.signals import user_signed_up
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.db import transaction
from django.test import RequestFactory
from django_registration.signals import user_registered as registration_signal

from signalhooks import user_deleted, user_registered, user_updated
from tests.relatedapp.models import Team

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def received():
    events = []
    for signal, name in (
        (user_registered, "registered"),
        (user_updated, "updated"),
        (user_deleted, "deleted"),
    ):
        signal.connect(
            lambda name=name, **kw: events.append((name, kw)),
            weak=False,
            dispatch_uid=f"test-{name}",
        )
    yield events
    for signal, name in (
        (user_registered, "registered"),
        (user_updated, "updated"),
        (user_deleted, "deleted"),
    ):
        signal.disconnect(dispatch_uid=f"test-{name}")


def names(events):
    return [name for name, _ in events]


def test_user_registered_once_after_commit(received):
    with transaction.atomic():
        user = User.objects.create_user("ada", "ada@example.com")
        user.first_name = "Ada"
        user.save()
        assert received == []
    assert names(received) == ["registered"]
    name, kwargs = received[0]
    assert kwargs["user"] == user and kwargs["sender"] is User and kwargs["request"] is None


def test_user_registered_never_after_rollback(received):
    with pytest.raises(RuntimeError), transaction.atomic():
        User.objects.create_user("ada", "ada@example.com")
        raise RuntimeError
    assert received == []


def test_user_registered_not_for_fixtures(received, tmp_path):
    fixture = tmp_path / "users.json"
    fixture.write_text(
        '[{"model": "auth.user", "pk": 77, "fields": {"username": "fix", '
        '"password": "!", "email": "f@example.com"}}]'
    )
    call_command("loaddata", str(fixture), verbosity=0)
    assert User.objects.filter(pk=77).exists()
    assert received == []


def test_user_registered_once_whatever_the_sources(received):
    request = RequestFactory().get("/signup/")
    with transaction.atomic():
        user = User.objects.create_user("ada", "ada@example.com")
        registration_signal.send(sender=object, user=user, request=request)
        user_signed_up.send(sender=User, request=request, user=user)
    assert names(received) == ["registered"]
    assert received[0][1]["request"] is request
    # Another instance of the same user, after the send: still one.
    user_signed_up.send(sender=User, request=request, user=User.objects.get(pk=user.pk))
    assert names(received) == ["registered"]


def test_user_updated_for_security_fields_with_redacted_password(received, caplog):
    user = User.objects.create_user("ada", "ada@example.com", password="one")
    received.clear()
    old_hash = user.password
    user.first_name = "not watched"
    user.save()
    assert received == []
    with caplog.at_level(logging.INFO, logger="signalhooks.audit"):
        user.email = "new@example.com"
        user.is_staff = True
        user.set_password("two")
        user.save()
    [(name, kwargs)] = received
    assert name == "updated"
    assert kwargs["changes"] == {
        "email": ("ada@example.com", "new@example.com"),
        "is_staff": (False, True),
        "password": ("<redacted>", "<redacted>"),
    }
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "is_staff changed from False to True" in logged
    assert "password changed" in logged
    for secret in (old_hash, user.password):
        assert secret not in logged and secret not in repr(received)


def test_user_updated_for_groups_and_permissions_both_directions(received, caplog):
    user = User.objects.create_user("ada")
    other = User.objects.create_user("bob")
    staff = Group.objects.create(name="staff")
    perm = Permission.objects.first()
    received.clear()
    with caplog.at_level(logging.INFO, logger="signalhooks.audit"):
        user.groups.add(staff)
        staff.user_set.add(other)
        user.user_permissions.add(perm)
        staff.user_set.remove(user)
        staff.user_set.clear()
        user.user_permissions.clear()
    changes = [(kw["user"].username, kw["changes"]) for _, kw in received]
    assert changes == [
        ("ada", {"groups": ([], [staff.pk])}),
        ("bob", {"groups": ([], [staff.pk])}),
        ("ada", {"user_permissions": ([], [perm.pk])}),
        ("ada", {"groups": ([staff.pk], [])}),
        ("bob", {"groups": ([staff.pk], [])}),
        ("ada", {"user_permissions": ([perm.pk], [])}),
    ]
    assert sum("groups changed" in r.getMessage() for r in caplog.records) == 4
    staff.permissions.add(perm)  # not a user relation: nothing
    Team.objects.create().members.add(user)  # a user relation, but not a privilege
    assert len(received) == 6


def test_user_deleted_after_commit(received):
    user = User.objects.create_user("ada")
    received.clear()
    with transaction.atomic():
        user.delete()
        assert received == []
    assert names(received) == ["deleted"]


def test_custom_user_model():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/custom_user_check.py",
            "-q",
            "-p",
            "no:cov",
            "--ds=tests.settings_custom_user",
            "-p",
            "no:randomly",
        ],
        capture_output=True,
        text=True,
        # A database of its own: this run's test database is in use.
        env={
            **os.environ,
            "SIGNALHOOKS_TEST_DB_SUFFIX": os.environ.get("SIGNALHOOKS_TEST_DB_SUFFIX", "")
            + "_custom",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_user_registered_memory_of_sent_users_is_bounded(received, monkeypatch):
    from signalhooks import users

    monkeypatch.setattr(users, "_RECENT_LIMIT", 1)
    first = User.objects.create_user("ada")
    User.objects.create_user("bob")
    # ada was forgotten: a late package signal for another instance of her sends again.
    user_signed_up.send(sender=User, request=None, user=User.objects.get(pk=first.pk))
    assert [kw["user"].username for _, kw in received] == ["ada", "bob", "ada"]
