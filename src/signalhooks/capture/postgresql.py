"""PostgreSQL: statement-level triggers reading transition tables.

One ``UPDATE ... FROM (SELECT key, SUM(...) ... GROUP BY key)`` per parent table and
statement: a 10,000-row ``UPDATE`` of children moves each parent once, in one pass over
the rows it changed, instead of 10,000 row triggers. An ``UPDATE`` of children reads
the old rows negated and the new rows added, so a row that stays with its parent moves
it by the difference and a row that moves takes its amount along.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

from .spec import Captured, TableSpec, Target
from .sql import NAME, Dialect, Trigger, named

OLD, NEW = "signalhooks_old", "signalhooks_new"


def dialect(connection: BaseDatabaseWrapper) -> Dialect:
    return Dialect(
        quote=connection.ops.quote_name,
        same="IS NOT DISTINCT FROM",
        greatest="GREATEST",
        true="TRUE",
        false="FALSE",
        # The time of the statement, as a save's timezone.now() is the time of the save.
        now="statement_timestamp()",
        today="CAST(statement_timestamp() AS date)",
    )


def _update(d: Dialect, target: Target, fk: str, sources: list[tuple[str, str]]) -> str:
    """Return the UPDATE of ``target`` by the rows of ``sources`` (``(table, sign)``)."""
    q = d.quote
    amounts = [f"s{index}" for index in range(len(target.summed))]
    selects = [
        "SELECT "
        + ", ".join(
            [
                f"r.{q(fk)} AS k",
                *(
                    f"{sign}{d.amount('r', s)} AS {a}"
                    for s, a in zip(target.summed, amounts, strict=True)
                ),
            ]
        )
        + f" FROM {table} AS r"
        for table, sign in sources
    ]
    rows = " UNION ALL ".join(selects)
    sums = "".join(f", SUM(x.{a}) AS {a}" for a in amounts)
    sets, moved = d.assignments(target, [f"d.{a}" for a in amounts], current="p.")
    return (
        f"UPDATE {q(target.table)} AS p SET {sets} "
        f"FROM (SELECT x.k{sums} FROM ({rows}) AS x WHERE x.k IS NOT NULL GROUP BY x.k) AS d "
        f"WHERE p.{q(target.key)} = d.k{moved};"
    )


def triggers(spec: TableSpec, connection: BaseDatabaseWrapper) -> list[Trigger]:
    """Return the INSERT, UPDATE and DELETE triggers (and their functions) of ``spec``'s table."""
    d = dialect(connection)
    q = d.quote
    events = {
        "INSERT": ([(NEW, "")], f"NEW TABLE AS {NEW}"),
        "UPDATE": ([(OLD, "-"), (NEW, "")], f"OLD TABLE AS {OLD} NEW TABLE AS {NEW}"),
        "DELETE": ([(OLD, "-")], f"OLD TABLE AS {OLD}"),
    }
    found = []
    for event, (sources, referencing) in events.items():
        statements = [
            _update(d, target, link.fk, sources) for link in spec.links for target in link.targets
        ]
        body = "\n".join(["BEGIN", *statements, "RETURN NULL;", "END"])
        found.append(
            named(
                spec.table,
                event,
                (
                    f"CREATE OR REPLACE FUNCTION {NAME}() RETURNS trigger LANGUAGE plpgsql "
                    f"AS $signalhooks$\n{body}\n$signalhooks$",
                    f"CREATE TRIGGER {NAME} AFTER {event} ON {q(spec.table)} "
                    f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {NAME}()",
                ),
            )
        )
    return found


def installed(connection: BaseDatabaseWrapper) -> set[tuple[str, str]]:  # pragma: no cover
    """Return ``(table, trigger name)`` of every signalhooks trigger on the search path.

    Covered by the suite's PostgreSQL run (tests/test_capture.py), not by the SQLite
    run that measures coverage.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname FROM pg_catalog.pg_trigger t "
            "JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND t.tgname LIKE 'signalhooks\\_%' "
            "AND pg_catalog.pg_table_is_visible(c.oid)"
        )
        return {(table, name) for table, name in cursor.fetchall()}


def drop(connection: BaseDatabaseWrapper, table: str, name: str) -> tuple[str, ...]:
    q = connection.ops.quote_name
    return (
        f"DROP TRIGGER IF EXISTS {q(name)} ON {q(table)}",
        f"DROP FUNCTION IF EXISTS {q(name)}()",
    )


#: The transactional outbox: what rows the rules' templates need, old and new, the
#: backend (session) that wrote them, and how many deliveries of the row failed.
OUTBOX_TABLE = (
    "CREATE TABLE IF NOT EXISTS signalhooks_outbox (id bigserial PRIMARY KEY, "
    "model text NOT NULL, old jsonb, new jsonb, "
    "pid integer NOT NULL DEFAULT pg_backend_pid(), attempts integer NOT NULL DEFAULT 0)",
    # An outbox made before these columns existed gets them.
    "ALTER TABLE signalhooks_outbox "
    "ADD COLUMN IF NOT EXISTS pid integer NOT NULL DEFAULT pg_backend_pid(), "
    "ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0",
    "CREATE INDEX IF NOT EXISTS signalhooks_outbox_pid ON signalhooks_outbox (pid, id)",
)
#: No mark to read before a write: a session's own rows carry its backend's pid, and a
#: later transaction of the session has higher ids than an earlier one.
OWN_MARK = None
#: The rows of the session's own transactions above the ids it handled already (``%s``).
OWN_ROWS = (
    "SELECT id, model, old, new FROM signalhooks_outbox "
    "WHERE pid = pg_backend_pid() AND id > %s ORDER BY id"
)
#: The channel ``follow`` listens on: a trigger notifies it, delivered at commit.
CHANNEL = "signalhooks_outbox"


def outbox_triggers(spec: Captured, connection: BaseDatabaseWrapper) -> list[Trigger]:
    """Return the statement-level triggers that record ``spec``'s table's writes."""
    q = connection.ops.quote_name
    label = "'" + spec.label.replace("'", "''") + "'"

    def image(row: str) -> str:
        pairs = ", ".join(f"'{c}', {row}.{q(c)}" for c, _ in spec.columns)
        return f"json_build_object({pairs})"

    pk = q(spec.pk)
    events = {
        "INSERT": (f"SELECT {label}, NULL, {image('n')} FROM {NEW} AS n", f"NEW TABLE AS {NEW}"),
        "UPDATE": (
            f"SELECT {label}, {image('o')}, {image('n')} FROM {OLD} AS o "
            f"FULL JOIN {NEW} AS n ON o.{pk} = n.{pk}",
            f"OLD TABLE AS {OLD} NEW TABLE AS {NEW}",
        ),
        "DELETE": (f"SELECT {label}, {image('o')}, NULL FROM {OLD} AS o", f"OLD TABLE AS {OLD}"),
    }
    found = []
    for event, (select, referencing) in events.items():
        body = (
            f"BEGIN\nINSERT INTO signalhooks_outbox (model, old, new) {select};\n"
            f"PERFORM pg_notify('{CHANNEL}', '');\nRETURN NULL;\nEND"
        )
        found.append(
            named(
                spec.table,
                f"{event}:outbox",
                (
                    f"CREATE OR REPLACE FUNCTION {NAME}() RETURNS trigger LANGUAGE plpgsql "
                    f"AS $signalhooks$\n{body}\n$signalhooks$",
                    f"CREATE TRIGGER {NAME} AFTER {event} ON {q(spec.table)} "
                    f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {NAME}()",
                ),
            )
        )
    return found
