"""The retry store: failed invalidations wait in the database, not in a worker's memory.

A flush that fails writes what it could not send as one row (one INSERT, only on
failure), so a deploy, a ``HUP`` or a crash during an outage loses nothing. Each
process checks the store on its first flush per cache, and again after each of its
own failures; ``manage.py signalhooks flush`` delivers on demand.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.apps import apps
from django.db import DatabaseError
from django.db.models import Manager, Model

if TYPE_CHECKING:
    from .keys import Invalidation

logger = logging.getLogger("signalhooks")

#: Cache aliases whose stored rows this process delivered since its last failure.
_delivered: set[str] = set()


def _rows() -> Manager[Model]:
    """Return the manager of :class:`~signalhooks.models.InvalidationRetry`.

    Looked up, not imported: ``signalhooks/__init__`` imports this module before
    Django has loaded the models. ``get_registered_model``, not ``get_model``: a test
    may override ``INSTALLED_APPS`` without signalhooks while hooks still run (Django's
    own suite does), and the model stays registered all the same.
    """
    return apps.get_registered_model("signalhooks", "InvalidationRetry")._default_manager


def mark_delivered(aliases: Iterable[str]) -> None:
    """Treat the stores of ``aliases`` as delivered: their next flush does not look.

    For tests whose database starts empty, so a first flush adds no SELECT.
    """
    _delivered.update(aliases)


def reset() -> None:
    """Forget what was delivered, as a new process: every next flush looks in the store."""
    _delivered.clear()


def due(alias: str) -> bool:
    """Return whether the next flush of ``alias`` should look for stored rows."""
    return alias not in _delivered


def store(alias: str, invalidation: Invalidation) -> None:
    """Keep ``invalidation`` for a later flush of ``alias``; never raise."""
    _delivered.discard(alias)
    if not (invalidation.keys or invalidation.tags or invalidation.patterns):
        return
    try:
        _rows().create(
            cache=alias,
            keys=sorted(invalidation.keys),
            tags=sorted(invalidation.tags),
            patterns=sorted(invalidation.patterns),
        )
    except DatabaseError:
        logger.exception(
            "signalhooks: could not store the failed invalidations of cache %r; only their "
            "timeouts expire them now: keys=%s tags=%s patterns=%s",
            alias,
            sorted(invalidation.keys),
            sorted(invalidation.tags),
            sorted(invalidation.patterns),
        )


def load(alias: str, into: Invalidation) -> list[int]:
    """Add what is stored for ``alias`` to ``into``; return the ids of its rows."""
    ids: list[int] = []
    rows = _rows().filter(cache=alias).order_by("id")
    for pk, keys, tags, patterns in rows.values_list("id", "keys", "tags", "patterns"):
        ids.append(pk)
        into.keys.update(keys)
        into.tags.update(tags)
        into.patterns.update(patterns)
    return ids


def delivered(alias: str, ids: list[int]) -> None:
    """Delete the rows ``ids`` of ``alias``, which a flush just sent."""
    _delivered.add(alias)
    if ids:
        _rows().filter(id__in=ids).delete()
