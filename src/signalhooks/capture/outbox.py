"""The transactional outbox: deliver the changes the triggers recorded, at least once.

Triggers on tables with cache rules (and on the children whose counters move such a
parent) write the columns the rules read, old and new, to ``signalhooks_outbox`` in the
writing transaction: raw SQL, plain managers, other programs and database cascades
included, and nothing of a transaction that rolls back. :func:`deliver` hands the rows to
the model's bulk handlers (its rules: keys of the old and of the new values) and deletes
them once the invalidations are sent or kept in the retry store; a process that dies in
between leaves them for the next delivery (at least once).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any, Literal

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.models import Model

from signalhooks.registry import registry

from .install import VENDORS, enabled
from .spec import captured

#: Rows read (and deleted) per round of :func:`deliver`.
BATCH = 500


def deliver(using: str, limit: int = BATCH) -> int:
    """Deliver up to ``limit`` changes from the outbox of ``using``; return how many.

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
            "SELECT id, model, old, new FROM signalhooks_outbox ORDER BY id LIMIT %s", [limit]
        )
        rows = cursor.fetchall()
    if not rows:
        return 0
    tables = {spec.label: spec for spec in captured(connection).values()}
    groups: defaultdict[tuple[str, str], list[tuple[Any, Any]]] = defaultdict(list)
    for _, label, old, new in rows:
        action = "create" if old is None else "delete" if new is None else "update"
        groups[(label, action)].append((_load(old), _load(new)))
    for (label, action), changes in groups.items():
        spec = tables.get(label)
        if spec is None:
            continue  # no rules any more (declarations changed since): nothing to do
        model = apps.get_model(label)
        pairs = [(_row(model, spec.columns, o), _row(model, spec.columns, n)) for o, n in changes]
        kind: Literal["create", "update", "delete"] = action  # type: ignore[assignment]
        # Outside a transaction, so the rules' invalidations are sent now (or stored
        # for retry by the flush): only then are the rows safe to delete.
        registry.run_bulk(model, using, kind, pairs)
    ids = [row[0] for row in rows]
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM signalhooks_outbox WHERE id IN ({', '.join(['%s'] * len(ids))})", ids
        )
    return len(rows)


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
