"""Install the triggers like the schema: ``migrate`` (post_migrate) makes them current.

The declarations give the triggers each database must have (:func:`expected`); each
trigger's name is a hash of its SQL, so the triggers present are current exactly when
their names are the expected ones. :func:`install` drops every signalhooks trigger not
expected (declarations changed or gone, python mode) and creates the missing ones, in
one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from signalhooks.conf import conf

from . import postgresql, sqlite
from .spec import captured, tables
from .sql import Trigger

#: The modes of ``SIGNALHOOKS["CAPTURE"]``.
MODES = ("python", "database")
VENDORS: dict[str, ModuleType] = {"sqlite": sqlite, "postgresql": postgresql}


def vendor(connection: BaseDatabaseWrapper) -> ModuleType:
    """Return the SQL generator of ``connection``'s database; raise if it has none."""
    module = VENDORS.get(connection.vendor)
    if module is None:
        raise ImproperlyConfigured(
            f'SIGNALHOOKS["CAPTURE"] = "database" needs PostgreSQL or SQLite; database '
            f"{connection.alias!r} is {connection.display_name}. Set "
            f'SIGNALHOOKS["CAPTURE"] = "python" (or leave it out) for this project.'
        )
    return module


def enabled() -> bool:
    """Return whether triggers keep counters, totals and touches (database mode)."""
    return bool(conf.CAPTURE == "database")


def expected(using: str) -> list[Trigger]:
    """Return the triggers the declarations give database ``using`` (none in python mode)."""
    if not enabled():
        return []
    connection = connections[using]
    module = vendor(connection)
    found: list[Trigger] = []
    for spec in tables(connection).values():
        found.extend(module.triggers(spec, connection))
    for table in captured(connection).values():
        found.extend(module.outbox_triggers(table, connection))
    return found


@dataclass(frozen=True, slots=True)
class State:
    """One trigger of a table: ``current``, ``missing`` (to create) or ``outdated`` (to drop)."""

    table: str
    name: str
    state: Literal["current", "missing", "outdated"]
    event: str = ""


def status(using: str) -> list[State]:
    """Return every expected and every installed signalhooks trigger of ``using``, by table."""
    return status_of(connections[using])


def status_of(connection: BaseDatabaseWrapper) -> list[State]:
    """:func:`status` of a connection."""
    module = VENDORS.get(connection.vendor)
    if module is None:  # python mode on another database: it has none of ours
        return []
    wanted = expected(connection.alias)
    present = module.installed(connection)
    states = [
        State(t.table, t.name, "current" if (t.table, t.name) in present else "missing", t.event)
        for t in wanted
    ]
    known = {(t.table, t.name) for t in wanted}
    states.extend(State(table, name, "outdated") for table, name in present - known)
    return sorted(states, key=lambda s: (s.table, s.event, s.name))


def install(using: str) -> list[State]:
    """Make ``using``'s triggers current; return what was created and dropped.

    Tables that do not exist yet (an app not migrated on this database) are left for
    the ``migrate`` that creates them.
    """
    return install_on(connections[using])


def install_on(connection: BaseDatabaseWrapper) -> list[State]:
    """:func:`install` on a connection."""
    module = VENDORS.get(connection.vendor)
    if module is None:
        return []
    wanted = {(t.table, t.name): t for t in expected(connection.alias)}
    existing = set(connection.introspection.table_names())
    changes = []
    with transaction.atomic(connection.alias), connection.cursor() as cursor:
        if any(t.event.endswith(":outbox") for t in wanted.values()):
            for statement in module.OUTBOX_TABLE:
                cursor.execute(statement)
        for state in status_of(connection):
            if state.state == "outdated":
                for statement in module.drop(connection, state.table, state.name):
                    cursor.execute(statement)
                changes.append(state)
            elif state.state == "missing" and state.table in existing:
                for statement in wanted[(state.table, state.name)].create:
                    cursor.execute(statement)
                changes.append(state)
    return changes


def on_post_migrate(*, using: str, verbosity: int = 1, stdout: Any = None, **kwargs: Any) -> None:
    """Install the triggers after ``migrate`` (connected to post_migrate in ``ready()``)."""
    changes = install(using)
    if verbosity >= 1 and stdout is not None and changes:
        created = sum(1 for change in changes if change.state == "missing")
        stdout.write(
            f"  signalhooks: {created} trigger(s) created, "
            f"{len(changes) - created} dropped on {using!r}.\n"
        )
