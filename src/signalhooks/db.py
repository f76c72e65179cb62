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
