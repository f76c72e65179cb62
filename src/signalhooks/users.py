"""The user lifecycle: ``user_registered``, ``user_updated``, ``user_deleted``.

Each is sent once, after the transaction that caused it commits. They are hooks
on ``AUTH_USER_MODEL`` in the registry, plus receivers of django-registration's
and django-allauth's own signals when those are installed.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from functools import partial
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Model
from django.dispatch import Signal

from .conf import conf
from .registry import Event, Hook, registry

audit = logging.getLogger("signalhooks.audit")

#: Sent once per new user after commit: ``sender`` (user model), ``user``, ``request``.
user_registered = Signal()
#: Sent after commit when a security-relevant field changes: ``sender``, ``user``, ``changes``.
user_updated = Signal()
#: Sent after commit when a user is deleted: ``sender``, ``user``.
user_deleted = Signal()

WATCHED = ("email", "is_active", "is_staff", "is_superuser", "password")
PRIVILEGES = {"is_active", "is_staff", "is_superuser", "groups", "user_permissions"}

_MARK = "_signalhooks_registration"
# Users whose registration was sent recently, when a package signal brings another
# instance of the same user (bounded: it only has to outlive one request).
_recent: OrderedDict[str, None] = OrderedDict()
_RECENT_LIMIT = 10_000


class _Registration:
    """One user's pending ``user_registered``: sent once, with the request if any source has it."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.request: Any = None

    def send(self) -> None:
        key = _key(self.user)
        _recent[key] = None
        while len(_recent) > _RECENT_LIMIT:
            _recent.popitem(last=False)
        user_registered.send(sender=type(self.user), user=self.user, request=self.request)


def _key(user: Any) -> str:
    return f"{type(user)._meta.label_lower}:{user.pk}"


def _begin(user: Any, using: str | None, request: Any = None) -> None:
    registration = user.__dict__.get(_MARK)
    if registration is None:
        if _key(user) in _recent:
            return  # another source already sent it for this user
        registration = user.__dict__[_MARK] = _Registration(user)
        transaction.on_commit(registration.send, using=using)
    if request is not None and registration.request is None:
        registration.request = request


# -- sources ----------------------------------------------------------------------------


def _on_created(*, instance: Any, using: str, **kwargs: Any) -> None:
    _begin(instance, using)


def _on_package_signal(*, user: Any, request: Any = None, **kwargs: Any) -> None:
    # django-registration's user_registered / django-allauth's user_signed_up.
    _begin(user, user._state.db, request)


def _on_updated(*, instance: Any, changes: dict[str, Any], using: str, **kwargs: Any) -> None:
    watched = {name: change for name, change in changes.items() if name in WATCHED}
    _audit(instance, watched)
    transaction.on_commit(
        partial(user_updated.send, sender=type(instance), user=instance, changes=watched),
        using=using,
    )


def _on_deleted(*, instance: Any, using: str, **kwargs: Any) -> None:
    transaction.on_commit(
        partial(user_deleted.send, sender=type(instance), user=instance), using=using
    )


def _on_membership(
    *,
    instance: Any,
    action: str,
    pk_set: set[Any] | None,
    using: str,
    sender: type[Model],
    **kwargs: Any,
) -> None:
    """Report group and permission changes of users, from either side of the relation."""
    field = _membership_field(sender)
    if field is None:
        return
    user_model = user_model_class()
    users = user_model._default_manager.db_manager(using)
    forward = isinstance(instance, user_model)
    stash = f"_signalhooks_{field}_before"
    if action == "pre_clear":
        # pk_set is None for a clear: remember the links while they exist.
        linked = [instance] if forward else list(users.filter(**{field: instance.pk}))
        instance.__dict__[stash] = {u.pk: _pks(u, field) for u in linked}
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    before: dict[Any, list[Any]] | None = None
    if action == "post_clear":
        before = instance.__dict__.pop(stash, {})
        affected = [instance] if forward else list(users.filter(pk__in=list(before)))
    else:
        affected = [instance] if forward else list(users.filter(pk__in=pk_set or ()))
    moved = set(pk_set or ()) if forward else {instance.pk}
    for user in affected:
        now = _pks(user, field)
        if before is not None:
            old = before.get(user.pk, [])
        elif action == "post_add":
            old = sorted(set(now) - moved)
        else:
            old = sorted(set(now) | moved)
        changed = {field: (old, now)}
        _audit(user, changed)
        transaction.on_commit(
            partial(user_updated.send, sender=type(user), user=user, changes=changed),
            using=using,
        )


def _pks(user: Any, field: str) -> list[Any]:
    return sorted(getattr(user, field).values_list("pk", flat=True))


def _membership_field(through: type[Model]) -> str | None:
    for field in user_model_class()._meta.many_to_many:
        if field.name in ("groups", "user_permissions") and field.remote_field.through is through:
            return field.name
    return None


def _audit(user: Any, changes: dict[str, Any]) -> None:
    label = type(user)._meta.label
    for name, (old, new) in changes.items():
        if name in PRIVILEGES:
            audit.info("user %s (%s): %s changed from %r to %r", user.pk, label, name, old, new)
        elif name == "password":  # never the hashes
            audit.info("user %s (%s): password changed", user.pk, label)


# -- welcome mail ----------------------------------------------------------------------


def _welcome(*, user: Any, **kwargs: Any) -> None:
    if conf.WELCOME_MAIL:
        from .mail import schedule_welcome

        schedule_welcome(user.pk, using=user._state.db)


def user_model_class() -> type[Model]:
    return apps.get_model(settings.AUTH_USER_MODEL)


def install() -> None:
    """Register the user-lifecycle hooks (called from ``AppConfig.ready()``)."""
    if any(hook.func is _on_created for hook in registry.hooks()):
        return  # ready() ran again
    sender = settings.AUTH_USER_MODEL
    model = apps.get_model(sender)
    watched = frozenset(n for n in WATCHED if any(f.name == n for f in model._meta.concrete_fields))
    common: dict[str, Any] = {"sender": sender, "kind": "user"}
    registry.add(
        Hook(
            func=_on_created, event=Event.POST_SAVE, created=True, label="user_registered", **common
        )
    )
    registry.add(
        Hook(
            func=_on_updated,
            event=Event.POST_SAVE,
            created=False,
            changed=watched,
            label="user_updated",
            **common,
        )
    )
    registry.add(Hook(func=_on_deleted, event=Event.POST_DELETE, label="user_deleted", **common))
    registry.add(
        Hook(
            func=_on_membership,
            event=Event.M2M_CHANGED,
            label="user_updated (groups, permissions)",
            **common,
        )
    )
    user_registered.connect(_welcome, dispatch_uid="signalhooks.welcome_mail")
    try:
        from django_registration.signals import user_registered as registration_signal
    except ImportError:  # pragma: no cover - django-registration is not installed
        pass
    else:
        registration_signal.connect(_on_package_signal, dispatch_uid="signalhooks.users")
    if apps.is_installed("allauth.account"):  # pragma: no branch - installed in the tests
        from allauth.account.signals import user_signed_up

        user_signed_up.connect(_on_package_signal, dispatch_uid="signalhooks.users")
