"""The user lifecycle: ``user_registered``, ``user_updated``, ``user_deleted``.

All three are sent after the transaction that caused them commits, never after a
rollback. Their sources are hooks on ``AUTH_USER_MODEL`` in the registry (kind
``"user"``) and, when installed, django-registration's ``user_registered`` and
django-allauth's ``user_signed_up``.

Every source schedules its own ``transaction.on_commit`` callback, so a rolled-back
savepoint takes exactly its own callbacks with it. The sources of one new user share
one :class:`_Registration`: the first of its callbacks that survives to the commit
sends ``user_registered`` (with the request, if any source brought one); the others
find it sent.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from weakref import WeakValueDictionary

from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Model
from django.dispatch import Signal

from .hooktypes import Event, Hook
from .registry import registry

logger = logging.getLogger("signalhooks")
audit = logging.getLogger("signalhooks.audit")

#: Sent once per new user after commit: ``sender`` (the user model), ``user``, ``request``.
user_registered = Signal()
#: Sent after commit when a security-relevant field changes: ``sender``, ``user``, ``changes``.
user_updated = Signal()
#: Sent after commit when a user is deleted: ``sender``, ``user`` (its ``pk`` kept).
user_deleted = Signal()

#: Fields whose changes send ``user_updated``, besides the model's email field.
SECURITY_FIELDS = ("is_active", "is_staff", "is_superuser", "password")
#: Many-to-many relations of the user model whose changes send ``user_updated``.
MEMBERSHIPS = ("groups", "user_permissions")
#: What ``signalhooks.audit`` reports with old and new values.
PRIVILEGES = frozenset({"is_active", "is_staff", "is_superuser", *MEMBERSHIPS})

#: ``instance.__dict__`` key marking a user saved by a fixture load (``raw``).
_RAW = "_signalhooks_raw"

# (database alias, user model label, pk as text): one user in one database.
Key = tuple[str, str, str]


def _key(user: Model, using: str) -> Key:
    return (using, user._meta.label_lower, str(user.pk))


# -- user_registered -------------------------------------------------------------------


class _Registration:
    """One user's ``user_registered`` in one transaction, fed by every source."""

    __slots__ = ("__weakref__", "key", "request", "sent", "user")

    def __init__(self, key: Key, user: Model) -> None:
        self.key = key
        self.user = user
        self.request: Any = None
        self.sent = False


_lock = threading.Lock()
# The registrations whose transaction is still open. Only their on_commit callbacks
# hold them, so a rollback, which drops the callbacks, drops the entry too.
_open: WeakValueDictionary[Key, _Registration] = WeakValueDictionary()
# Users announced lately, so that a package signal bringing a fresh instance of an
# already announced user (django-registration's one-step view re-reads the user
# through authenticate()) does not announce it again. Bounded: it only has to outlive
# the request that registered the user.
_announced: OrderedDict[Key, None] = OrderedDict()
#: How many announced users are remembered (the oldest are forgotten first).
ANNOUNCED_LIMIT = 10_000


def forget_announced() -> None:
    """Forget the users announced so far (tests whose rows went without delete signals)."""
    with _lock:
        _announced.clear()


def _register(user: Model, using: str, request: Any, *, created: bool) -> None:
    """Schedule ``user_registered`` for ``user`` after the current transaction commits.

    ``created`` is true for the creation of the row itself, which always starts a
    registration; package signals join the one under way, or are dropped when the
    user was announced already.
    """
    key = _key(user, using)
    with _lock:
        registration = _open.get(key)
        if created or registration is None or registration.sent:
            if not created and key in _announced:
                return
            registration = _open[key] = _Registration(key, user)
        if request is not None:
            registration.request = request
    transaction.on_commit(partial(_announce, registration), using=using)


def _announce(registration: _Registration) -> None:
    if registration.sent:
        return  # an earlier source of this transaction sent it
    registration.sent = True
    # Remembered only once committed. Callbacks run inside an atomic block come from
    # TestCase's captureOnCommitCallbacks, whose transaction is rolled back: a new
    # user may get the same pk there (SQLite) and must be announced.
    if not transaction.get_connection(registration.key[0]).in_atomic_block:
        with _lock:
            _announced.pop(registration.key, None)
            _announced[registration.key] = None
            while len(_announced) > ANNOUNCED_LIMIT:
                _announced.popitem(last=False)
    user = registration.user
    granted = [
        f"{name}=True" for name in ("is_staff", "is_superuser") if getattr(user, name, False)
    ]
    if granted:
        audit.info("user %s (%s) registered with %s", user.pk, user._meta.label, ", ".join(granted))
    _send(user_registered, user, request=registration.request)


def _on_package_signal(*, user: Model, request: Any = None, **kwargs: Any) -> None:
    """Receive django-registration's ``user_registered`` and django-allauth's ``user_signed_up``."""
    _register(user, user._state.db or DEFAULT_DB_ALIAS, request, created=False)


# -- user_updated / user_deleted -------------------------------------------------------


def _on_saved(
    *,
    instance: Model,
    created: bool,
    raw: bool,
    changes: Mapping[str, tuple[Any, Any]],
    using: str,
    **kwargs: Any,
) -> None:
    if raw:
        # A fixture: no signal, and none for the groups it assigns right after.
        instance.__dict__[_RAW] = True
        return
    if created:
        _register(instance, using, None, created=True)
        return
    watched = {name: change for name, change in changes.items() if name in _watched}
    if watched:
        transaction.on_commit(partial(_announce_update, instance, watched), using=using)


def _announce_update(user: Model, changes: dict[str, tuple[Any, Any]]) -> None:
    label = user._meta.label
    for name, (old, new) in changes.items():
        if name in MEMBERSHIPS:
            for verb, pks in (("removed", old), ("added", new)):
                if pks:
                    audit.info("user %s (%s): %s %s %r", user.pk, label, name, verb, pks)
        elif name in PRIVILEGES:
            audit.info("user %s (%s): %s changed from %r to %r", user.pk, label, name, old, new)
        elif name == "password":  # the values are redacted; say only that it changed
            audit.info("user %s (%s): password changed", user.pk, label)
    _send(user_updated, user, changes=changes)


def _on_deleted(*, instance: Model, using: str, **kwargs: Any) -> None:
    # Django sets the pk of a deleted instance to None once every post_delete ran:
    # receivers get a copy that keeps it.
    transaction.on_commit(partial(_announce_deleted, copy.copy(instance), using), using=using)


def _announce_deleted(user: Model, using: str) -> None:
    with _lock:  # its pk may be given to a new user, who must be announced
        _announced.pop(_key(user, using), None)
    audit.info("user %s (%s) deleted", user.pk, user._meta.label)
    _send(user_deleted, user)


@dataclass(frozen=True, slots=True)
class _Membership:
    """A group or permission relation of the user model, as rows of its through table."""

    name: str
    through: type[Model]
    user_column: str
    target_column: str

    def linked(self, using: str, instance: Model, reverse: bool) -> list[Any]:
        """Return the pks linked to ``instance`` now (targets, or users if ``reverse``)."""
        mine, theirs = (
            (self.target_column, self.user_column)
            if reverse
            else (self.user_column, self.target_column)
        )
        rows = self.through._default_manager.db_manager(using).filter(**{mine: instance.pk})
        return list(rows.values_list(theirs, flat=True))


def _on_membership(
    *,
    sender: type[Model],
    instance: Model,
    action: str,
    reverse: bool,
    pk_set: set[Any] | None,
    using: str,
    **kwargs: Any,
) -> None:
    """Turn a group or permission change of users, from either side, into ``user_updated``.

    ``changes`` holds ``(removed pks, added pks)``, taken from Django's ``pk_set``: no
    query for ``add()`` (Django has dropped the links that exist), ``remove()`` and
    ``set()``. Only ``clear()`` names no pks: the links are read before it.
    """
    membership = _memberships.get(sender)
    if membership is None:
        return  # another many-to-many relation of the user model
    d = instance.__dict__
    # A fixture load. Django 6.0+ says so (raw=True), and the registry does not call
    # this hook for it; Django 5.2 does not, but the user was just saved raw.
    if not reverse and d.get(_RAW):  # pragma: no cover - only Django 5.2 gets here
        return
    stash = f"_signalhooks_{membership.name}_cleared"
    if action == "pre_clear":
        d[stash] = membership.linked(using, instance, reverse)
        return
    if action == "post_clear":
        pks: Iterable[Any] = d.pop(stash, ())
    elif action in ("post_add", "post_remove"):
        pks = pk_set or ()
    else:
        return  # pre_add, pre_remove: post_* reports what happened
    pks = sorted(pks)
    if not pks:
        return
    added = action == "post_add"
    if reverse:  # instance is a Group or Permission; pks are users
        user_model = _user_model()
        users = user_model._default_manager.db_manager(using).in_bulk(pks)
        change = ([], [instance.pk]) if added else ([instance.pk], [])
        updates = [(users[pk], change) for pk in pks if pk in users]
    else:
        updates = [(instance, ([], pks) if added else (pks, []))]
    for user, change in updates:
        transaction.on_commit(
            partial(_announce_update, user, {membership.name: change}), using=using
        )


# -- sending -----------------------------------------------------------------------------


def _send(signal: Signal, user: Model, **kwargs: Any) -> None:
    """Send ``signal`` to every receiver; log the ones that fail instead of raising.

    This runs in an on_commit callback: raising would skip the callbacks after it
    (other users' signals, cache invalidations) and fail a request whose data is
    already committed.
    """
    for receiver, result in signal.send_robust(sender=type(user), user=user, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "signalhooks: receiver %s of %s failed for user %s",
                getattr(receiver, "__qualname__", repr(receiver)),
                _SIGNAL_NAMES[signal],
                user.pk,
                exc_info=result,
            )


_SIGNAL_NAMES = {
    user_registered: "user_registered",
    user_updated: "user_updated",
    user_deleted: "user_deleted",
}


# -- installation ------------------------------------------------------------------------

_watched: frozenset[str] = frozenset()
_memberships: dict[type[Model], _Membership] = {}


def _user_model() -> type[Model]:
    return apps.get_model(settings.AUTH_USER_MODEL)


def email_field_name(model: type[Model]) -> str:
    """Return the name of the email field of a user model (``EMAIL_FIELD``, else "email")."""
    return str(getattr(model, "EMAIL_FIELD", "email"))


def email_address(user: Model) -> str:
    """Return the address of ``user`` from its model's ``EMAIL_FIELD`` ("" if none)."""
    return str(getattr(user, email_field_name(type(user)), "") or "")


def _membership(field: Any) -> _Membership:
    through: type[Model] = field.remote_field.through
    return _Membership(
        name=field.name,
        through=through,
        # The names of the through model's two foreign keys (values_list gives their ids).
        user_column=field.m2m_field_name(),
        target_column=field.m2m_reverse_field_name(),
    )


def install() -> None:
    """Register the user-lifecycle hooks and receivers (from ``AppConfig.ready()``)."""
    global _watched
    if any(hook.func is _on_saved for hook in registry.hooks()):
        return  # ready() ran again
    model = _user_model()
    names = {f.name for f in model._meta.concrete_fields}
    _watched = frozenset(n for n in (email_field_name(model), *SECURITY_FIELDS) if n in names)
    _memberships.update(
        (membership.through, membership)
        for membership in map(_membership, model._meta.many_to_many)
        if membership.name in MEMBERSHIPS
    )
    # A lazy sender: the hooks follow AUTH_USER_MODEL, custom user models included.
    common: dict[str, Any] = {"sender": settings.AUTH_USER_MODEL, "kind": "user"}
    registry.add(
        Hook(
            func=_on_saved,
            event=Event.POST_SAVE,
            raw=True,  # to recognise fixture loads; they send nothing
            track=_watched,
            label="user_registered, user_updated",
            details={"watched": sorted(_watched)},
            **common,
        )
    )
    registry.add(Hook(func=_on_deleted, event=Event.POST_DELETE, label="user_deleted", **common))
    registry.add(
        Hook(
            func=_on_membership,
            event=Event.M2M_CHANGED,
            label="user_updated (memberships)",
            details={"relations": sorted(m.name for m in _memberships.values())},
            **common,
        )
    )
    try:
        from django_registration.signals import user_registered as registration_signal
    except ImportError:  # pragma: no cover - django-registration is a test dependency
        pass
    else:
        registration_signal.connect(_on_package_signal, dispatch_uid="signalhooks.users")
    if apps.is_installed("allauth.account"):  # pragma: no branch - installed in the tests
        from allauth.account.signals import user_signed_up

        user_signed_up.connect(_on_package_signal, dispatch_uid="signalhooks.users")
