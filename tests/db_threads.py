"""Database connections of the threads a test starts."""

from __future__ import annotations

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper


def close_thread_connections() -> None:
    """Close every database connection the calling thread opened, in-memory SQLite too.

    Call it in a ``finally:`` at the end of a thread's target. Django's SQLite backend
    ignores ``close()`` on an in-memory database, since closing the last connection would
    drop the database. A worker thread's connection is never the last (the test's own
    thread holds one), so the base class' ``close()`` closes it for real. Left open, it is
    garbage-collected with the thread: Python 3.13 reports that as ``ResourceWarning:
    unclosed database``, which the suite turns into an error.
    """
    for connection in connections.all(initialized_only=True):
        if connection.vendor == "sqlite" and connection.is_in_memory_db():
            BaseDatabaseWrapper.close(connection)
        else:
            connection.close()
