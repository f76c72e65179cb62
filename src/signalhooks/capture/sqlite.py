"""SQLite: row triggers (``AFTER INSERT/UPDATE/DELETE ... FOR EACH ROW``) reading OLD/NEW.

Each child row moves its parents with one indexed ``UPDATE`` per parent table; an update
that keeps the parent moves it by the difference, one that moves the row takes it out
of the old parent and into the new one.
"""

from __future__ import annotations

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper

from .spec import Captured, TableSpec, Target
from .sql import NAME, Dialect, Trigger, named


def dialect(connection: BaseDatabaseWrapper) -> Dialect:
    # Django stores an aware datetime as UTC text ("YYYY-MM-DD HH:MM:SS.ffffff"), a
    # naive one (USE_TZ = False) as local time.
    zone = "" if settings.USE_TZ else ", 'localtime'"
    return Dialect(
        quote=connection.ops.quote_name,
        same="IS",
        greatest="MAX",
        true="1",
        false="0",
        now=f"strftime('%Y-%m-%d %H:%M:%f', 'now'{zone}) || '000'",
        today=f"date('now'{zone})",
    )


def _update(d: Dialect, target: Target, deltas: list[str], key: str, when: str) -> str:
    q = d.quote
    sets, moved = d.assignments(target, deltas)
    return f"UPDATE {q(target.table)} SET {sets} WHERE {q(target.key)} = {key}{when}{moved};"


def triggers(spec: TableSpec, connection: BaseDatabaseWrapper) -> list[Trigger]:
    """Return the INSERT, UPDATE and DELETE triggers of ``spec``'s table."""
    d = dialect(connection)
    q = d.quote
    bodies: dict[str, list[str]] = {"INSERT": [], "UPDATE": [], "DELETE": []}
    for link in spec.links:
        new, old = f"NEW.{q(link.fk)}", f"OLD.{q(link.fk)}"
        for target in link.targets:
            added = [d.amount("NEW", s) for s in target.summed]
            removed = [f"(0 - {d.amount('OLD', s)})" for s in target.summed]
            bodies["INSERT"].append(_update(d, target, added, new, ""))
            bodies["DELETE"].append(_update(d, target, removed, old, ""))
            # Same parent: moved by the difference; another parent: out of one, into the other.
            difference = [f"({d.amount('NEW', s)} - {d.amount('OLD', s)})" for s in target.summed]
            bodies["UPDATE"].extend(
                [
                    _update(d, target, difference, new, f" AND {new} IS {old}"),
                    _update(d, target, removed, old, f" AND {new} IS NOT {old}"),
                    _update(d, target, added, new, f" AND {new} IS NOT {old}"),
                ]
            )
    return [
        named(
            spec.table,
            event,
            (
                f"CREATE TRIGGER {NAME} AFTER {event} ON {q(spec.table)} FOR EACH ROW BEGIN\n"
                + "\n".join(statements)
                + "\nEND",
            ),
        )
        for event, statements in bodies.items()
    ]


def installed(connection: BaseDatabaseWrapper) -> set[tuple[str, str]]:
    """Return ``(table, trigger name)`` of every signalhooks trigger in the database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger' "
            "AND name LIKE 'signalhooks\\_%' ESCAPE '\\'"
        )
        return {(table, name) for table, name in cursor.fetchall()}


def drop(connection: BaseDatabaseWrapper, table: str, name: str) -> tuple[str, ...]:
    return (f"DROP TRIGGER IF EXISTS {connection.ops.quote_name(name)}",)


#: The transactional outbox: what rows the rules' templates need, old and new, and how
#: many deliveries of the row failed.
OUTBOX_TABLE = (
    "CREATE TABLE IF NOT EXISTS signalhooks_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "model TEXT NOT NULL, old TEXT, new TEXT, attempts INTEGER NOT NULL DEFAULT 0)",
)
#: The highest outbox id. Read inside a transaction before its first write, it splits the
#: rows: SQLite has one writer at a time, so the transaction's rows are exactly those
#: above it (AUTOINCREMENT ids only grow).
OWN_MARK = "SELECT MAX(id) FROM signalhooks_outbox"
#: The rows of the connection's own transactions since the mark (``%s``).
OWN_ROWS = "SELECT id, model, old, new FROM signalhooks_outbox WHERE id > %s ORDER BY id"


def outbox_triggers(spec: Captured, connection: BaseDatabaseWrapper) -> list[Trigger]:
    """Return the triggers that record ``spec``'s table's writes in the outbox."""
    q = connection.ops.quote_name
    label = "'" + spec.label.replace("'", "''") + "'"

    def image(row: str) -> str:
        return "json_object(" + ", ".join(f"'{c}', {row}.{q(c)}" for c, _ in spec.columns) + ")"

    values = {
        "INSERT": ("NULL", image("NEW")),
        "UPDATE": (image("OLD"), image("NEW")),
        "DELETE": (image("OLD"), "NULL"),
    }
    return [
        named(
            spec.table,
            f"{event}:outbox",
            (
                f"CREATE TRIGGER {NAME} AFTER {event} ON {q(spec.table)} FOR EACH ROW BEGIN\n"
                f"INSERT INTO signalhooks_outbox (model, old, new) VALUES ({label}, {old}, {new});"
                "\nEND",
            ),
        )
        for event, (old, new) in values.items()
    ]
