"""The committing process delivers its own transaction's outbox rows, right after COMMIT.

In database mode every connection gets an execute wrapper (Django's public
``execute_wrappers``; the first one, so a ``with connection.execute_wrapper(...)``
around it pops its own). It only looks at the statement's first word: a transaction
that writes (``save()``, any manager's ``update()`` / ``bulk_create()`` / ``delete()``,
``cursor.execute()``) may have made the triggers write outbox rows. After it commits,
the process reads the rows of its own transaction, hands them to the rules and sends
their invalidations merged with what Python saw, in the flush's one round trip, then
deletes them. Inside ``atomic()`` that is the transaction's batch flush
(:attr:`signalhooks.batching.Batch.outbox`); in autocommit it happens before the
statement returns, so ``Item.objects.filter(pk=1).update(slug="new")`` has invalidated
``item:1``, ``item:slug:old`` and ``item:slug:new`` when it returns.

Which rows are the transaction's: on PostgreSQL the rows carry their backend's pid,
and a session's later transactions have higher ids than its earlier ones; on SQLite
(one writer at a time) the rows above the last outbox id read before the first write.
Rows of other transactions stay for ``follow``. When a send fails (its invalidations
go to the retry store), or reading the rules' rows raises, the rows stay too: ``follow``
delivers them (at least once). Nothing here ever fails the write or the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from signalhooks.batching import collecting, current
from signalhooks.invalidation import send
from signalhooks.keys import Invalidation

from .install import VENDORS
from .outbox import hand_over, remove

logger = logging.getLogger("signalhooks")

#: The statements that may make a trigger write outbox rows, by their first word.
WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "REPLAC", "MERGE "})


class Own:
    """The execute wrapper of one connection in database mode."""

    __slots__ = ("busy", "connection", "floor", "later", "module")

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection
        self.module = VENDORS[connection.vendor]
        #: PostgreSQL: the highest outbox id of this session handled already.
        self.floor = 0
        #: While our own outbox statements run: they are not the application's writes.
        self.busy = False
        #: SQLite: the mark of autocommit writes not committed when they returned.
        self.later: int | None = None

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        if self.busy:
            return execute(sql, params, many, context)
        if self.later is not None:
            self.catch_up()
        if sql.lstrip()[:6].upper() not in WRITES:
            return execute(sql, params, many, context)
        connection = self.connection
        if connection.in_atomic_block:
            batch = current(connection)
            if batch.outbox is None:
                floor = self.mark()
                if floor is not None:
                    batch.outbox = partial(self.collect, floor)
            return execute(sql, params, many, context)
        if not connection.autocommit:
            # Managed by hand (set_autocommit(False)): no commit to wait for; follow's.
            return execute(sql, params, many, context)
        floor = self.mark()
        result = execute(sql, params, many, context)
        if floor is None:
            return result
        if self.module.OWN_MARK is not None and ("RETURNING" in sql or "returning" in sql):
            # SQLite: a statement with RETURNING commits when its rows have been read,
            # after this returns; sent now, a reader could cache the old state again
            # before the COMMIT. Delivered at the connection's next statement.
            self.later = floor if self.later is None else min(self.later, floor)
            return result
        self.deliver(floor)
        return result

    def catch_up(self) -> None:
        """Deliver what a statement left for later: it committed before the next one."""
        if not self.connection.autocommit:
            return  # a transaction managed by hand began: the first statement after it
        floor, self.later = self.later, None
        assert floor is not None
        self.deliver(floor)

    def deliver(self, floor: int) -> None:
        """Send the invalidations of the committed rows above ``floor`` and remove them."""
        into: dict[str, Invalidation] = {}
        done = self.collect(floor, into)
        sent = True
        for alias, invalidation in into.items():
            sent = send(alias, invalidation) and sent
        if done is not None:
            done(sent)

    def mark(self) -> int | None:
        """Return the outbox id above which this transaction's rows will be (None: there
        is no outbox yet, so nothing to deliver)."""
        if self.module.OWN_MARK is None:  # pragma: no cover - the PostgreSQL run executes it
            return self.floor
        self.busy = True
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(self.module.OWN_MARK)
                row = cursor.fetchone()
        except DatabaseError:  # no outbox (before migrate): nothing of ours goes there
            return None
        finally:
            self.busy = False
        return int(row[0] or 0)

    def collect(self, floor: int, into: dict[str, Invalidation]) -> Callable[[bool], None] | None:
        """Add the invalidations of this connection's committed rows above ``floor`` to
        ``into``; return what removes the rows once they are sent (None: no rows)."""
        connection = self.connection
        self.busy = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(self.module.OWN_ROWS, [floor])
                rows = cursor.fetchall()
        except DatabaseError:  # no outbox (before migrate), or a lost connection: follow's
            logger.debug("signalhooks: could not read the outbox", exc_info=True)
            return None
        finally:
            self.busy = False
        if not rows:
            return None
        ids = [row[0] for row in rows]
        self.floor = max(self.floor, ids[-1])
        with collecting(connection, into):
            failed = hand_over(connection.alias, rows)

        def done(sent: bool) -> None:
            # Not sent (kept in the retry store), or not handed over: follow delivers them.
            delivered = [pk for pk in ids if pk not in failed] if sent else []
            if not delivered:
                return
            self.busy = True
            try:
                with connection.cursor() as cursor:
                    remove(cursor, delivered)
            except DatabaseError:  # delivered again by follow: harmless
                logger.exception("signalhooks: could not remove delivered outbox rows")
            finally:
                self.busy = False

        return done


def attach(connection: BaseDatabaseWrapper) -> None:
    """Give ``connection`` its wrapper in database mode, take it away in python mode."""
    wrappers = connection.execute_wrappers
    present = [wrapper for wrapper in wrappers if isinstance(wrapper, Own)]
    if _database_mode() and connection.vendor in VENDORS:
        if not present:
            wrappers.insert(0, Own(connection))
        return
    for wrapper in present:
        wrappers.remove(wrapper)


def _database_mode() -> bool:
    """:func:`~.install.enabled`, read without validating ``SIGNALHOOKS``: a bad setting
    is the settings check's to report (E041), not every new connection's."""
    value = getattr(settings, "SIGNALHOOKS", None)
    return isinstance(value, dict) and value.get("CAPTURE") == "database"


@receiver(connection_created, dispatch_uid="signalhooks.capture.own")
def _on_connection_created(*, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    attach(connection)


@receiver(setting_changed, dispatch_uid="signalhooks.capture.own.setting")
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "SIGNALHOOKS":
        for connection in connections.all(initialized_only=True):
            attach(connection)
