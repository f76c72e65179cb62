"""Collect the invalidations of a transaction; flush them once, after it commits.

Inside ``atomic()`` every save adds its keys to one :class:`Batch` per database
connection, and a single ``on_commit`` callback sends the lot, per cache, in one
round trip. Outside a transaction they are sent at once.

Savepoints: Django drops the ``on_commit`` callbacks registered inside a savepoint
that rolls back. A batch whose callback is gone therefore holds only work that was
rolled back (everything it collected came after that callback was registered, inside
the savepoint), so it is dropped and the next save starts a new one. A batch that
began before a savepoint keeps what a rolled-back savepoint added: invalidating a
little more is harmless, invalidating less would leave a stale cache.

Database capture adds the transaction's own outbox rows to the same flush
(:attr:`Batch.outbox`, :func:`collecting`): one round trip for what Python saw and what
the triggers recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from django.db.backends.base.base import BaseDatabaseWrapper

from .db import SAVE_END
from .db import connection as connection_of
from .invalidation import send
from .keys import Invalidation


class Batch:
    """The invalidations of one transaction on one database connection, per cache.

    Or of one save made in autocommit (``held`` is ``_SAVE_BATCH``): flushed when
    its hooks are done (:func:`signalhooks.db.as_one_save`).
    """

    __slots__ = ("by_cache", "callbacks", "connection", "held", "outbox")

    def __init__(self, connection: BaseDatabaseWrapper, held: str = "") -> None:
        self.connection = connection
        self.by_cache: dict[str, Invalidation] = {}
        #: Database capture: called at the flush, before sending, to add the outbox rows
        #: of the transaction to ``by_cache``; what it returns is called with whether
        #: everything was sent (to remove those rows). None in python mode.
        self.outbox: Outbox | None = None
        self.held = held or _BATCH
        connection.__dict__[self.held] = self
        if held:
            connection.__dict__[SAVE_END].append(self.flush)
        else:
            connection.on_commit(self.flush)
        # Django replaces this list when a savepoint rolls back or the transaction
        # ends; while it is the same list, our callback is certainly still queued.
        self.callbacks = connection.run_on_commit

    def is_queued(self) -> bool:
        flush = self.flush
        return any(entry[1] == flush for entry in self.connection.run_on_commit)

    def flush(self) -> None:
        held = self.connection.__dict__
        if held.get(self.held) is self:
            del held[self.held]
        done = None if self.outbox is None else self.outbox(self.by_cache)
        sent = True
        for alias, invalidation in self.by_cache.items():
            sent = send(alias, invalidation) and sent
        if done is not None:
            done(sent)


#: See :attr:`Batch.outbox`.
Outbox = Callable[[dict[str, Invalidation]], "Callable[[bool], None] | None"]


#: The attribute of a database connection holding its batch: a dict look-up on every
#: save, where a WeakKeyDictionary made a weak reference each time.
_BATCH = "_signalhooks_batch"
#: The attribute holding the batch of the save in autocommit whose hooks are running.
_SAVE_BATCH = "_signalhooks_save_batch"
#: The attribute of a connection holding where :func:`queue` adds outside a transaction
#: instead of sending (:func:`collecting`).
_COLLECT = "_signalhooks_collect"


def _current_batch(connection: BaseDatabaseWrapper, batch: Batch | None) -> Batch:
    """Return the batch of the transaction in progress (the run_on_commit list changed)."""
    if batch is not None and batch.is_queued():
        batch.callbacks = connection.run_on_commit  # a savepoint it survived rolled back
        return batch
    # None yet, or its flush went with the rollback that undid everything it held.
    return Batch(connection)


def detach(using: str) -> None:
    """Make the next invalidation on ``using`` open a batch of its own (own ``on_commit``).

    The batch in progress keeps what it holds and still flushes at the commit. For
    :mod:`signalhooks.testing`: a record runs only the callbacks queued after it
    started, so what is queued inside its block must not join a batch whose callback
    was queued before it (a ``TestCase``'s ``setUpTestData``, a pytest fixture).
    """
    connection_of(using).__dict__.pop(_BATCH, None)


def current(connection: BaseDatabaseWrapper) -> Batch:
    """Return the batch of ``connection``'s transaction in progress (inside ``atomic()``)."""
    batch = connection.__dict__.get(_BATCH)
    if batch is None or batch.callbacks is not connection.run_on_commit:
        batch = _current_batch(connection, batch)
    return batch


@contextmanager
def collecting(connection: BaseDatabaseWrapper, into: dict[str, Invalidation]) -> Iterator[None]:
    """Make :func:`queue` add to ``into`` (per cache) outside a transaction, not send."""
    connection.__dict__[_COLLECT] = into
    try:
        yield
    finally:
        del connection.__dict__[_COLLECT]


def queue(
    using: str,
    alias: str,
    keys: Iterable[str],
    tags: Iterable[str] = (),
    patterns: Iterable[str] = (),
) -> None:
    """Invalidate on cache ``alias`` after the transaction on ``using`` commits (now if none).

    This is on the save path: it only adds to sets. No cache I/O before the flush.
    """
    connection = connection_of(using)
    held = connection.__dict__
    if not connection.in_atomic_block:
        into = held.get(_COLLECT)
        if into is not None:  # database capture delivering its outbox rows
            pending = into.get(alias)
            if pending is None:
                pending = into[alias] = Invalidation()
            pending.keys.update(keys)
            pending.tags.update(tags)
            pending.patterns.update(patterns)
            return
        if SAVE_END not in held:
            send(alias, Invalidation(set(keys), set(tags), set(patterns)))
            return
        # A save in autocommit whose hooks invalidate more than once: one flush at its end.
        batch = held.get(_SAVE_BATCH) or Batch(connection, _SAVE_BATCH)
    else:
        batch = held.get(_BATCH)
        if batch is None or batch.callbacks is not connection.run_on_commit:
            batch = _current_batch(connection, batch)
    pending = batch.by_cache.get(alias)
    if pending is None:
        pending = batch.by_cache[alias] = Invalidation()
    pending.keys.update(keys)
    pending.tags.update(tags)
    pending.patterns.update(patterns)
