from __future__ import annotations

import logging
import os
import subprocess
import sys
from functools import partial
from io import StringIO

import pytest
from allauth.account.signals import user_signed_up
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group, Permission, User
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models.signals import m2m_changed
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django_registration.signals import user_registered as registration_signal

from signalhooks import user_deleted, user_registered, user_updated
from signalhooks.models import WelcomeMail
from signalhooks.registry import registry
from tests.relatedapp.models import Team

pytestmark = pytest.mark.django_db(transaction=True)

SIGNALS = {user_registered: "registered", user_updated: "updated", user_deleted: "deleted"}


@pytest.fixture
def received():
    """Every user signal sent, as ``(name, kwargs)``."""
    events = []
    for signal, name in SIGNALS.items():
        signal.connect(
            lambda name=name, **kw: events.append((name, kw)),
            weak=False,
            dispatch_uid=f"test-{name}",
        )
    yield events
    for signal, name in SIGNALS.items():
        signal.disconnect(dispatch_uid=f"test-{name}")


@pytest.fixture
def audit_log(caplog):
    caplog.set_level(logging.INFO, logger="signalhooks.audit")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "signalhooks.audit"]


def names(events):
    return [name for name, _ in events]


# -- user_registered ---------------------------------------------------------------------


def test_user_registered_once_after_commit(received):
    with transaction.atomic():
        user = User.objects.create_user("ada", "ada@example.com")
        user.first_name = "Ada"
        user.save()
        assert received == []
    expected = {"signal": user_registered, "sender": User, "user": user, "request": None}
    assert received == [("registered", expected)]


def test_user_registered_never_after_rollback(received):
    with pytest.raises(RuntimeError), transaction.atomic():
        User.objects.create_user("ada", "ada@example.com")
        raise RuntimeError
    assert received == []
    assert mail.outbox == [] and not WelcomeMail.objects.exists()


def test_user_registered_not_after_a_rolled_back_savepoint(received):
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            User.objects.create_user("ada", "ada@example.com")
            raise RuntimeError
        # On SQLite bob even gets the primary key ada had.
        User.objects.create_user("bob", "bob@example.com")
    assert [kw["user"].username for _, kw in received] == ["bob"]
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]


def test_user_registered_when_a_rolled_back_creation_is_saved_again(received):
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            user = User.objects.create_user("ada", "ada@example.com")
            raise RuntimeError
        user.save()  # the row is created again, in the outer transaction
        assert received == []
    assert [kw["user"] for _, kw in received] == [user]
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]


def test_user_registered_not_for_fixtures(received, tmp_path):
    staff = Group.objects.create(name="staff")
    fixture = tmp_path / "users.json"
    fixture.write_text(
        '[{"model": "auth.user", "pk": 77, "fields": {"username": "fix", "password": "!", '
        f'"email": "f@example.com", "is_staff": true, "groups": [{staff.pk}]}}}}]'
    )
    call_command("loaddata", str(fixture), verbosity=0)
    assert User.objects.get(pk=77).groups.get() == staff
    assert received == []  # no user_registered, no user_updated for the groups
    assert mail.outbox == []
    # Loading it again over the existing row: still nothing.
    call_command("loaddata", str(fixture), verbosity=0)
    assert received == []


def test_user_registered_once_whatever_the_sources(received):
    request = RequestFactory().get("/signup/")
    with transaction.atomic():
        user = User.objects.create_user("ada", "ada@example.com", password="pw")
        # django-registration's one-step view sends a fresh instance from authenticate().
        fresh = authenticate(username="ada", password="pw")
        assert fresh is not user
        registration_signal.send(sender=object, user=fresh, request=request)
        user_signed_up.send(sender=User, request=request, user=user)
        assert received == []
    [(name, kwargs)] = received
    assert name == "registered" and kwargs["user"] is user and kwargs["request"] is request
    # Late signals with other instances of the same user, after the send: still one.
    user_signed_up.send(sender=User, request=request, user=User.objects.get(pk=user.pk))
    with transaction.atomic():
        registration_signal.send(sender=object, user=User.objects.get(pk=user.pk), request=None)
    assert names(received) == ["registered"]
    assert len(mail.outbox) == 1


def test_user_registered_from_a_package_signal_alone(received):
    # A user row made without post_save (bulk_create): the package signal is the source.
    User.objects.bulk_create([User(username="ada", email="ada@example.com")])
    user = User.objects.get(username="ada")
    request = RequestFactory().get("/signup/")
    with transaction.atomic():
        user_signed_up.send(sender=User, request=request, user=user)
        user_signed_up.send(sender=User, request=request, user=user)
        assert received == []
    assert [(n, kw["user"], kw["request"]) for n, kw in received] == [("registered", user, request)]
    assert len(mail.outbox) == 1


def test_user_registered_again_for_a_recreated_row(received):
    User.objects.create_user("ada", "ada@example.com", pk=50).delete()
    User.objects.create_user("ada2", "ada2@example.com", pk=50)
    assert names(received) == ["registered", "deleted", "registered"]


def test_user_registered_and_mailed_again_for_a_pk_freed_by_a_delete(received):
    User.objects.create_user("ada", "ada@example.com", pk=50).delete()
    # A row made without post_save, so announced by a package signal alone.
    User.objects.bulk_create([User(pk=50, username="bob", email="bob@example.com")])
    bob = User.objects.get(pk=50)
    user_signed_up.send(sender=User, request=None, user=bob)
    assert names(received) == ["registered", "deleted", "registered"]
    assert received[2][1]["user"] is bob
    ada_mail, bob_mail = mail.outbox
    assert [ada_mail.to, bob_mail.to] == [["ada@example.com"], ["bob@example.com"]]
    assert ada_mail.extra_headers["Message-ID"] != bob_mail.extra_headers["Message-ID"]
    # A deleted user's delivery row goes with it.
    User.objects.filter(pk=50).delete()
    assert not WelcomeMail.objects.exists()


def test_user_registered_for_a_pk_freed_by_a_rollback(received, django_capture_on_commit_callbacks):
    """What TestCase does on SQLite: on-commit work run by hand, then a rollback."""
    # Far above the pks other (committed) tests reach: only this test may announce it.
    pk = 9_000_060
    with pytest.raises(RuntimeError), transaction.atomic():
        with django_capture_on_commit_callbacks(execute=True):
            User.objects.create_user("ada", "ada@example.com", pk=pk)
        raise RuntimeError
    User.objects.bulk_create([User(pk=pk, username="bob", email="bob@example.com")])
    user_signed_up.send(sender=User, request=None, user=User.objects.get(pk=pk))
    assert [kw["user"].username for _, kw in received] == ["ada", "bob"]
    assert [m.to for m in mail.outbox] == [["ada@example.com"], ["bob@example.com"]]


def test_user_registered_memory_of_announced_users_is_bounded(received, monkeypatch):
    from signalhooks import users

    monkeypatch.setattr(users, "ANNOUNCED_LIMIT", 1)
    first = User.objects.create_user("ada")
    User.objects.create_user("bob")
    # ada was forgotten: a late package signal for another instance of her sends again.
    user_signed_up.send(sender=User, request=None, user=User.objects.get(pk=first.pk))
    assert [kw["user"].username for _, kw in received] == ["ada", "bob", "ada"]


def test_user_registered_audits_privileged_users(received, audit_log):
    with transaction.atomic():
        admin = User.objects.create_superuser("root", "root@example.com", "pw")
        User.objects.create_user("ada")
        assert audit_log() == []
    granted = "is_staff=True, is_superuser=True"
    assert audit_log() == [f"user {admin.pk} (auth.User) registered with {granted}"]


def _signup(client, url, data, atomic_requests, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", atomic_requests)
    with override_settings(ROOT_URLCONF="tests.usersapp.urls", ACCOUNT_EMAIL_VERIFICATION="none"):
        response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return User.objects.get(username=data["username"])


@pytest.mark.parametrize("atomic_requests", [False, True], ids=["autocommit", "atomic_requests"])
@pytest.mark.parametrize("url", ["/registration/register/", "/accounts/signup/"])
def test_user_registered_once_from_the_sign_up_views(
    client, received, monkeypatch, url, atomic_requests
):
    """django-registration's one-step view and allauth's signup view, for real."""
    data = {"username": "ada", "email": "ada@example.com"}
    data |= {"password1": "a long secret 1", "password2": "a long secret 1"}
    user = _signup(client, url, data, atomic_requests, monkeypatch)
    [(name, kwargs)] = [e for e in received if e[0] == "registered"]
    assert kwargs["user"] == user
    if atomic_requests:
        # The package signal came before the commit: its request is the one sent.
        assert kwargs["request"].path == url
    else:
        # The row's creation committed, and sent, before the package signal came.
        assert kwargs["request"] is None
    welcome = [m for m in mail.outbox if m.subject.startswith("Welcome to")]
    assert [m.to for m in welcome] == [["ada@example.com"]]


# -- user_updated ------------------------------------------------------------------------


def test_user_updated_for_security_fields_with_redacted_password(received, caplog, audit_log):
    caplog.set_level(logging.DEBUG)
    user = User.objects.create_user("ada", "ada@example.com", password="one")
    received.clear()
    old_hash = user.password
    user.first_name = "not watched"
    user.save()
    user.save()
    assert received == []
    with transaction.atomic():
        user.email = "new@example.com"
        user.is_staff = True
        user.set_password("two")
        user.save()
        assert received == [] and audit_log() == []
    [(name, kwargs)] = received
    assert name == "updated" and kwargs["user"] is user and kwargs["sender"] is User
    assert kwargs["changes"] == {
        "email": ("ada@example.com", "new@example.com"),
        "is_staff": (False, True),
        "password": ("<redacted>", "<redacted>"),
    }
    assert audit_log() == [
        f"user {user.pk} (auth.User): password changed",
        f"user {user.pk} (auth.User): is_staff changed from False to True",
    ]
    for secret in (old_hash, user.password):
        assert secret not in caplog.text and secret not in repr(received)


def test_user_updated_with_update_fields(received):
    user = User.objects.create_user("ada", "ada@example.com", password="one")
    received.clear()
    user.is_active = False
    user.email = "unsaved@example.com"
    user.save(update_fields=["is_active", "last_login"])
    assert [kw["changes"] for _, kw in received] == [{"is_active": (True, False)}]


def test_user_updated_never_after_rollback(received, audit_log):
    user = User.objects.create_user("ada")
    received.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        user.is_superuser = True
        user.save()
        user.groups.add(Group.objects.create(name="staff"))
        raise RuntimeError
    assert received == [] and audit_log() == []


def test_user_updated_for_groups_and_permissions_both_directions(received, audit_log):
    user = User.objects.create_user("ada")
    other = User.objects.create_user("bob")
    staff = Group.objects.create(name="staff")
    perm = Permission.objects.first()
    received.clear()
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
    assert audit_log()[0] == f"user {user.pk} (auth.User): groups added [{staff.pk}]"
    assert audit_log()[3] == f"user {user.pk} (auth.User): groups removed [{staff.pk}]"
    assert sum(" groups " in line for line in audit_log()) == 4


def test_user_updated_only_for_real_membership_changes(received):
    user = User.objects.create_user("ada")
    staff, editors = Group.objects.create(name="staff"), Group.objects.create(name="editors")
    user.groups.add(staff)
    received.clear()
    user.groups.add(staff)  # already there
    staff.user_set.add(user)
    editors.user_set.clear()  # nobody
    user.groups.set([staff])
    assert received == []
    user.groups.set([editors])
    assert [kw["changes"] for _, kw in received] == [
        {"groups": ([staff.pk], [])},
        {"groups": ([], [editors.pk])},
    ]
    received.clear()
    # remove() is reported as Django's pk_set has it, read from no query: what was asked.
    user.groups.remove(staff)
    assert [kw["changes"] for _, kw in received] == [{"groups": ([staff.pk], [])}]
    received.clear()
    staff.permissions.add(Permission.objects.first())  # not a user relation
    Team.objects.create().members.add(user)  # a user relation, but not a privilege
    assert received == []


def statements(operation):
    """Return the SQL statements ``operation()`` runs, transaction control left out."""
    with CaptureQueriesContext(connection) as queries:
        operation()
    control = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"].split()[0] for q in queries if not q["sql"].startswith(control)]


def test_user_updated_memberships_read_no_links(received):
    """Membership changes come from pk_set: signalhooks adds no query to Django's own.

    Any m2m_changed receiver makes Django look up the links an add() would duplicate
    (one SELECT); a group's permissions with a receiver that does nothing show that.
    """
    user = User.objects.create_user("ada")
    staff, editors = Group.objects.create(name="staff"), Group.objects.create(name="editors")
    perm, other = Permission.objects.all()[:2]
    received.clear()
    m2m_changed.connect(
        lambda **kw: None, sender=Group.permissions.through, weak=False, dispatch_uid="t"
    )
    try:
        for operation in ("add", "remove", "add", "set"):
            argument = [other] if operation == "set" else perm
            django_own = statements(partial(getattr(staff.permissions, operation), argument))
            argument = [editors] if operation == "set" else staff
            ours = statements(partial(getattr(user.groups, operation), argument))
            assert ours == django_own, operation
    finally:
        m2m_changed.disconnect(sender=Group.permissions.through, dispatch_uid="t")
    assert statements(partial(user.groups.add, staff)) == ["SELECT", "INSERT"]
    assert [kw["changes"] for _, kw in received] == [
        {"groups": ([], [staff.pk])},
        {"groups": ([staff.pk], [])},
        {"groups": ([], [staff.pk])},
        {"groups": ([staff.pk], [])},
        {"groups": ([], [editors.pk])},
        {"groups": ([], [staff.pk])},
    ]


def test_user_updated_for_a_user_created_in_the_same_transaction(received):
    with transaction.atomic():
        user = User.objects.create_user("ada")
        user.groups.add(Group.objects.create(name="staff"))
    assert names(received) == ["registered", "updated"]
    assert received[1][1]["user"] is user


# -- user_deleted ------------------------------------------------------------------------


def test_user_deleted_after_commit_with_its_pk(received, audit_log):
    user = User.objects.create_user("ada")
    pk = user.pk
    received.clear()
    with transaction.atomic():
        user.delete()
        assert received == []
    [(name, kwargs)] = received
    assert name == "deleted" and kwargs["sender"] is User
    assert kwargs["user"].pk == pk and kwargs["user"].username == "ada"
    assert audit_log() == [f"user {pk} (auth.User) deleted"]


def test_user_deleted_never_after_rollback(received):
    user = User.objects.create_user("ada")
    received.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        User.objects.filter(pk=user.pk).delete()
        raise RuntimeError
    assert received == [] and User.objects.filter(pk=user.pk).exists()


# -- robustness ------------------------------------------------------------------------


def test_user_signals_a_failing_receiver_fails_nothing_else(received, caplog):
    def broken(**kwargs):
        raise ValueError("receiver bug")

    user_registered.connect(broken, dispatch_uid="test-broken")
    try:
        with transaction.atomic():
            user = User.objects.create_user("ada", "ada@example.com")
            transaction.on_commit(lambda: received.append(("later", {})))
    finally:
        user_registered.disconnect(dispatch_uid="test-broken")
    assert names(received) == ["registered", "later"]  # other receivers and callbacks ran
    assert len(mail.outbox) == 1
    [record] = [r for r in caplog.records if r.name == "signalhooks"]
    assert record.getMessage() == (
        f"signalhooks: receiver test_user_signals_a_failing_receiver_fails_nothing_else"
        f".<locals>.broken of user_registered failed for user {user.pk}"
    )


def test_user_hooks_are_listed_by_the_command():
    out = StringIO()
    call_command("signalhooks", stdout=out)
    listing = out.getvalue()
    assert "user_registered, user_updated" in listing
    assert "user_updated (memberships)" in listing and "user_deleted" in listing


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
    assert "2 passed" in result.stdout


def test_user_hooks_install_once():
    from signalhooks.users import install

    before = registry.hooks()
    install()  # ready() running again adds nothing
    assert registry.hooks() == before
    assert [h.label for h in before if h.kind == "user"] == [
        "user_registered, user_updated",
        "user_deleted",
        "user_updated (memberships)",
    ]
