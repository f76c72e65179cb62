"""The database connection of an alias, looked up the cheap way on the save path.

``django.db.connections[alias]`` goes through asgiref's ``Local``, which asks for a
running event loop (a Python-level exception when there is none) before it picks
its storage: about as much CPU as the rest of a cache rule's work on a save. Django
keeps a thread's connections in a ``threading.local`` behind that ``Local``
(``thread_critical=True``) and reads that storage whenever no event loop runs in
the thread. :func:`connection` reads the same storage under the same condition, and
asks ``connections[alias]`` in every other case (an event loop running, a
connection not opened yet in this thread, an asgiref that keeps it elsewhere), so
it always returns the object ``connections[alias]`` would.
"""

from __future__ import annotations

import threading
from asyncio import _get_running_loop
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper


def thread_storage(handler: Any) -> threading.local | None:
    storage = getattr(handler._connections, "_storage", None)
    return storage if isinstance(storage, threading.local) else None


_storage = thread_storage(connections)


def connection(using: str) -> BaseDatabaseWrapper:
    """Return ``django.db.connections[using]``."""
    if _storage is not None and _get_running_loop() is None:
        found: BaseDatabaseWrapper | None = _storage.__dict__.get(using)
        if found is not None:
            return found
    return connections[using]


#: ``connection.__dict__`` key, present while the hooks of one save made in autocommit
#: run (:func:`as_one_save`): the callbacks to call once they are done.
#: :func:`signalhooks.batching.queue` holds the save's invalidations back there, so the
#: save sends one flush, as a transaction does at its commit.
SAVE_END = "_signalhooks_save_end"


def as_one_save(using: str, run: Callable[[], None]) -> None:
    """Call ``run()``, then, in autocommit, the callbacks it left under ``SAVE_END``.

    The callbacks run even when ``run()`` raised: in autocommit the rows it wrote
    are committed. In a transaction (or inside an outer save's ``run()``) this is a
    plain call: the transaction (or that save) gathers the work already.
    """
    found = connection(using)
    held = found.__dict__
    if found.in_atomic_block or SAVE_END in held:
        run()
        return
    ending: list[Callable[[], None]] = []
    held[SAVE_END] = ending
    try:
        run()
    finally:
        del held[SAVE_END]
        for callback in ending:
            callback()
