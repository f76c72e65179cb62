"""Collect invalidations per transaction and send them in one round trip after commit.

Inside ``atomic()`` the keys of every save go into one :class:`Batch` per
database connection; a single ``on_commit`` callback flushes it. Outside a
transaction they are flushed at once. A flush that fails (Redis down, timeout)
is logged and kept, bounded, for the next flush: the save never fails.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import caches
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.dispatch import Signal

from .conf import conf

logger = logging.getLogger("signalhooks")

#: Sent after each successful flush; sender is the cache alias.
#: Keyword arguments: ``keys``, ``tags``, ``patterns`` (sorted lists).
cache_invalidated = Signal()


@dataclass
class Invalidation:
    """Cache keys to delete, tags to bump and patterns to delete, for one cache."""

    keys: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    patterns: set[str] = field(default_factory=set)

    def merge(self, other: Invalidation) -> None:
        self.keys |= other.keys
        self.tags |= other.tags
        self.patterns |= other.patterns

    def __bool__(self) -> bool:
        return bool(self.keys or self.tags or self.patterns)


class Batch:
    """The invalidations of one transaction on one database connection."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection
        # The outermost atomic block: tells a rolled-back savepoint (same block) from a
        # rolled-back transaction (a later block) when our callback is gone.
        self.outermost = connection.atomic_blocks[0]
        self.by_cache: dict[str, Invalidation] = {}
        self.register()

    def register(self) -> None:
        self.connection.on_commit(self.flush)
        # Django replaces this list whenever a transaction ends or a savepoint rolls
        # back; while it is the same list, our callback is certainly still queued.
        self.callbacks = self.connection.run_on_commit

    def is_queued(self) -> bool:
        return any(entry[1] == self.flush for entry in self.connection.run_on_commit)

    def add(self, alias: str, invalidation: Invalidation) -> None:
        pending = self.by_cache.get(alias)
        if pending is None:
            self.by_cache[alias] = invalidation
        else:
            pending.merge(invalidation)

    def flush(self) -> None:
        _batches.pop(self.connection, None)
        for alias, invalidation in self.by_cache.items():
            send(alias, invalidation)


_batches: weakref.WeakKeyDictionary[BaseDatabaseWrapper, Batch] = weakref.WeakKeyDictionary()


def queue(using: str, alias: str, invalidation: Invalidation) -> None:
    """Invalidate after the current transaction on ``using`` commits (now if none)."""
    if not invalidation:
        return
    connection = connections[using]
    if not connection.in_atomic_block:
        send(alias, invalidation)
        return
    batch = _batches.get(connection)
    if batch is not None and batch.callbacks is not connection.run_on_commit:
        # A savepoint rolled back or a transaction ended since we last looked.
        if batch.is_queued():
            batch.callbacks = connection.run_on_commit
        elif batch.outermost is connection.atomic_blocks[0]:
            # Our callback was queued inside a savepoint that rolled back; the
            # transaction goes on, so keep what it collected (invalidating a little
            # more is harmless) and queue the flush again.
            batch.register()
        else:
            # The transaction that collected these rolled back: forget them.
            batch = None
    if batch is None:
        batch = _batches[connection] = Batch(connection)
    batch.add(alias, invalidation)


# -- sending ----------------------------------------------------------------------------

_retry_lock = threading.Lock()
#: Invalidations that failed, per cache alias, retried at the next flush.
_retry: dict[str, deque[tuple[str, str]]] = {}


def _take_retries(alias: str, invalidation: Invalidation) -> None:
    with _retry_lock:
        failed = _retry.pop(alias, None)
    if failed:
        for kind, value in failed:
            getattr(invalidation, kind).add(value)


def _keep_for_retry(alias: str, invalidation: Invalidation) -> None:
    limit = int(conf.RETRY_LIMIT)
    with _retry_lock:
        kept = _retry.setdefault(alias, deque(maxlen=limit))
        for kind in ("keys", "tags", "patterns"):
            for value in sorted(getattr(invalidation, kind)):
                if len(kept) == limit:
                    logger.error(
                        "signalhooks: more than RETRY_LIMIT=%d failed invalidations for "
                        "cache %r; dropping %s %r (cache TTLs are the safety net)",
                        limit,
                        alias,
                        kind[:-1],
                        kept[0][1],
                    )
                kept.append((kind, value))


def pending_retries(alias: str) -> int:
    """Return how many failed invalidations wait for the next flush of ``alias``."""
    with _retry_lock:
        return len(_retry.get(alias, ()))


def send(alias: str, invalidation: Invalidation) -> None:
    """Invalidate now, in one round trip where the backend allows; never raise."""
    _take_retries(alias, invalidation)
    backend = caches[alias]
    try:
        if hasattr(backend, "delete_pattern") and hasattr(backend, "client"):
            _send_django_redis(backend, invalidation)
        else:
            _send_generic(backend, invalidation)
    except Exception:
        logger.exception(
            "signalhooks: invalidating cache %r failed; will retry at the next flush. "
            "keys=%s tags=%s patterns=%s",
            alias,
            sorted(invalidation.keys),
            sorted(invalidation.tags),
            sorted(invalidation.patterns),
        )
        _keep_for_retry(alias, invalidation)
        return
    cache_invalidated.send(
        sender=alias,
        keys=sorted(invalidation.keys),
        tags=sorted(invalidation.tags),
        patterns=sorted(invalidation.patterns),
    )


def _tag_keys(invalidation: Invalidation) -> list[str]:
    from .cache import tag_key

    return [tag_key(t) for t in sorted(invalidation.tags)]


def _send_django_redis(backend: Any, invalidation: Invalidation) -> None:
    client = backend.client
    redis = client.get_client(write=True)
    keys = [client.make_key(k) for k in sorted(invalidation.keys)]
    tags = [client.make_key(k) for k in _tag_keys(invalidation)]
    if keys or tags:
        # Keys and tags, however many, go in one pipeline: one round trip.
        pipeline = redis.pipeline(transaction=False)
        if keys:
            pipeline.delete(*keys)
        for tag in tags:
            pipeline.incr(tag)
        pipeline.execute()
    for pattern in sorted(invalidation.patterns):
        # SCAN (never KEYS) in pages of DJANGO_REDIS_SCAN_ITERSIZE, then one DELETE.
        backend.delete_pattern(pattern)


def _send_generic(backend: Any, invalidation: Invalidation) -> None:
    if invalidation.keys:
        backend.delete_many(sorted(invalidation.keys))
    for key in _tag_keys(invalidation):
        # A tag never read has no generation: nothing is cached under it.
        with contextlib.suppress(ValueError):
            backend.incr(key)
