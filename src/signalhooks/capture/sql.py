"""The SQL both vendors share: a child row's contribution and a parent column moved by it.

A :class:`Dialect` holds what differs (null-safe equality, ``GREATEST``, literals,
"now"); :mod:`.sqlite` and :mod:`.postgresql` assemble whole triggers from these parts.
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .spec import Condition, Summed, Target, Unsupported

#: Every trigger (and PostgreSQL trigger function) we create has a name starting so:
#: what install() may drop, and nothing else.
PREFIX = "signalhooks_"
#: Stands for the trigger's own name while its SQL is hashed into that name.
NAME = "__signalhooks_trigger__"


@dataclass(frozen=True, slots=True)
class Trigger:
    """One trigger (with its function, on PostgreSQL): created by ``create``, in order."""

    table: str
    name: str
    event: str
    create: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Dialect:
    quote: Callable[[str], str]
    #: Null-safe equality: ``IS`` (SQLite), ``IS NOT DISTINCT FROM`` (PostgreSQL).
    same: str
    #: The two-argument maximum: ``MAX`` (SQLite), ``GREATEST`` (PostgreSQL).
    greatest: str
    true: str
    false: str
    #: Now, as a DateTimeField and as a DateField holds it.
    now: str
    today: str

    def literal(self, value: Any) -> str:
        """Return ``value`` (a database value of a where= condition) as an SQL literal."""
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return self.true if value else self.false
        if isinstance(value, int | float | Decimal):
            return repr(value) if isinstance(value, int | float) else str(value)
        if isinstance(value, str | datetime.date | datetime.time | uuid.UUID):
            text = str(value)
            if "\x00" in text:
                raise Unsupported(f"where= value {value!r} holds a NUL character.")
            return "'" + text.replace("'", "''") + "'"
        raise Unsupported(
            f"where= value {value!r} ({type(value).__name__}) cannot be written into a "
            "trigger; use a number, string, boolean, date, UUID or None."
        )

    def match(self, row: str, conditions: tuple[Condition, ...]) -> str | None:
        """Return the SQL that ``row`` meets ``conditions`` (``None``: always)."""
        if not conditions:
            return None
        return " AND ".join(
            f"{row}.{self.quote(c.column)} {self.same} {self.literal(c.value)}" for c in conditions
        )

    def amount(self, row: str, summed: Summed) -> str:
        """Return what ``row`` adds to ``summed``'s column (0 where its conditions fail)."""
        value = "1" if summed.of is None else f"COALESCE({row}.{self.quote(summed.of)}, 0)"
        condition = self.match(row, summed.conditions)
        return value if condition is None else f"(CASE WHEN {condition} THEN {value} ELSE 0 END)"

    def moved(self, current: str, delta: str, summed: Summed) -> str:
        """Return ``current`` moved by ``delta``: unchanged at 0 (a NULL stays NULL), a
        counter clamped at zero when it goes down (a drifted count must not fail a delete)."""
        plus = f"COALESCE({current}, 0) + {delta}"
        if summed.clamped:
            return (
                f"CASE WHEN {delta} = 0 THEN {current} WHEN {delta} < 0 "
                f"THEN {self.greatest}({plus}, 0) ELSE {plus} END"
            )
        return f"CASE WHEN {delta} = 0 THEN {current} ELSE {plus} END"

    def touch(self, is_datetime: bool) -> str:
        return self.now if is_datetime else self.today

    def assignments(self, target: Target, deltas: list[str], current: str = "") -> tuple[str, str]:
        """Return the parent UPDATE's SET list for ``deltas`` (its columns read as
        ``current`` + column) and the condition that skips it when no amount moved ("" when
        it touches a date, which changes anyway)."""
        q = self.quote
        sets = [
            f"{q(s.column)} = {self.moved(current + q(s.column), delta, s)}"
            for s, delta in zip(target.summed, deltas, strict=True)
        ]
        sets.extend(f"{q(column)} = {self.touch(dated)}" for column, dated in target.touches)
        if target.touches:
            return ", ".join(sets), ""
        return ", ".join(sets), " AND (" + " OR ".join(f"{d} <> 0" for d in deltas) + ")"


def named(table: str, event: str, sql: tuple[str, ...]) -> Trigger:
    """Return the trigger whose name is a hash of its table, event and SQL.

    The name says which SQL is installed: a trigger is current when its name is the
    one the declarations give now, so "is it current" needs no comparison of bodies.
    """
    digest = hashlib.sha256("\n".join([table, event, *sql]).encode()).hexdigest()[:16]
    name = f"{PREFIX}{event[:3].lower()}_{digest}"
    return Trigger(table, name, event, tuple(s.replace(NAME, name) for s in sql))
