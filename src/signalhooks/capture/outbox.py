"""The transactional outbox: deliver the changes the triggers recorded, at least once.

Triggers on tables with cache rules (and on the children whose counters move such a
parent) write the columns the rules read, old and new, to ``signalhooks_outbox`` in the
writing transaction: raw SQL, plain managers, other programs and database cascades
included, and nothing of a transaction that rolls back. :func:`deliver` hands the rows to
the model's bulk handlers (its rules: keys of the old and of the new values) and deletes
them once the invalidations are sent or kept in the retry store; a process that dies in
between leaves them for the next delivery (at least once). The committing process
delivers its own transaction's rows itself (:mod:`.own`); ``follow`` delivers the rest.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.models import Model

from signalhooks.registry import registry

from .install import VENDORS, enabled
from .spec import captured

logger = logging.getLogger("signalhooks")

#: Rows read (and deleted) per round of :func:`deliver`.
BATCH = 500


#: Deliveries of a row that may fail (a template or a field that cannot read it) before
#: the row is dropped, logged with its content: the outbox stays bounded.
ATTEMPTS = 5


def deliver(using: str, limit: int = BATCH) -> int:
    """Deliver up to ``limit`` changes from the outbox of ``using``; return how many rows
    were removed (delivered, or dropped after :data:`ATTEMPTS` failed deliveries).

    Database mode only: in python mode the counters' bulk handlers would write what the
    triggers wrote already.
    """
    if not enabled():
        raise ImproperlyConfigured(
            'Delivering the outbox needs SIGNALHOOKS["CAPTURE"] = "database" (the mode '
            "whose triggers fill it)."
        )
    connection = connections[using]
    if "signalhooks_outbox" not in connection.introspection.table_names():
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, model, old, new, attempts FROM signalhooks_outbox ORDER BY id LIMIT %s",
            [limit],
        )
        rows = cursor.fetchall()
    if not rows:
        return 0
    # Outside a transaction, so the rules' invalidations are sent now (or stored for
    # retry by the flush): only then are the rows safe to delete.
    failed = hand_over(using, [row[:4] for row in rows])
    again = [row[0] for row in rows if row[0] in failed and row[4] + 1 < ATTEMPTS]
    dropped = [row for row in rows if row[0] in failed and row[4] + 1 >= ATTEMPTS]
    if dropped:
        logger.error(
            "signalhooks: dropped %d outbox row(s) whose delivery failed %d times; their "
            "cache keys expire only by timeout now: %r",
            len(dropped),
            ATTEMPTS,
            [row[:4] for row in dropped],
        )
    done = [row[0] for row in rows if row[0] not in again]
    with connection.cursor() as cursor:
        if again:
            cursor.execute(
                "UPDATE signalhooks_outbox SET attempts = attempts + 1 "
                f"WHERE id IN ({', '.join(['%s'] * len(again))})",
                again,
            )
        if done:
            remove(cursor, done)
    return len(done)


def remove(cursor: Any, ids: Sequence[int]) -> None:
    """Delete the outbox rows ``ids`` (delivered)."""
    cursor.execute(
        f"DELETE FROM signalhooks_outbox WHERE id IN ({', '.join(['%s'] * len(ids))})", ids
    )


def hand_over(using: str, rows: Sequence[tuple[int, str, Any, Any]]) -> set[int]:
    """Hand outbox rows (``id, model, old, new``) to their models' bulk handlers, which
    invalidate (or queue) the keys of the old and of the new values; return the ids of
    the rows whose handling raised (logged)."""
    connection = connections[using]
    tables = {spec.label: spec for spec in captured(connection).values()}
    groups: defaultdict[tuple[str, str], list[tuple[int, Any, Any]]] = defaultdict(list)
    for pk, label, old, new in rows:
        action = "create" if old is None else "delete" if new is None else "update"
        groups[(label, action)].append((pk, old, new))
    failed: set[int] = set()
    for (label, action), changes in groups.items():
        spec = tables.get(label)
        if spec is None:
            continue  # no rules any more (declarations changed since): nothing to do
        try:
            model = apps.get_model(label)
            pairs = [
                (_row(model, spec.columns, _load(o)), _row(model, spec.columns, _load(n)))
                for _, o, n in changes
            ]
            kind: Literal["create", "update", "delete"] = action  # type: ignore[assignment]
            registry.run_bulk(model, using, kind, pairs)
        except Exception:
            logger.exception(
                "signalhooks: could not deliver %d outbox row(s) of %s", len(changes), label
            )
            failed.update(pk for pk, _, _ in changes)
    return failed


def wait(using: str, timeout: float) -> None:
    """Wait up to ``timeout`` seconds for new changes: a notification on PostgreSQL, a
    plain sleep (the next poll) on SQLite."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        time.sleep(timeout)
        return
    _listen(connection, timeout)  # pragma: no cover - the PostgreSQL run executes it


def _listen(connection: Any, timeout: float) -> None:  # pragma: no cover - PostgreSQL
    module = VENDORS["postgresql"]
    connection.ensure_connection()
    if not getattr(connection, "_signalhooks_listening", False):
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {module.CHANNEL}")
        connection._signalhooks_listening = True
    for _ in connection.connection.notifies(timeout=timeout, stop_after=1):
        pass


def _load(value: Any) -> dict[str, Any] | None:
    """Return a row image: PostgreSQL's jsonb arrives as a dict, SQLite's JSON as text."""
    if value is None or isinstance(value, dict):
        return value
    loaded: dict[str, Any] = json.loads(value)
    return loaded


def _row(
    model: type[Model], columns: tuple[tuple[str, str], ...], image: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Return ``image`` (by column, JSON values) as the bulk handlers' row (by attname)."""
    if image is None:
        return None
    meta = model._meta
    row = {}
    for column, attname in columns:
        field = next(f for f in meta.concrete_fields if f.attname == attname)
        row[attname] = field.to_python(image.get(column))
    assert meta.pk is not None
    row["pk"] = row[meta.pk.attname]
    return row
