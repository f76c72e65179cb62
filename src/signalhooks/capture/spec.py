"""What the triggers of one child table must keep: the declarations, as columns.

``counter()`` / ``total()`` / ``touch()`` are compiled by :mod:`signalhooks.related` into
a :class:`~signalhooks.related.Plan` per child model; this module turns those plans
into plain table and column names and database values, which the vendors' SQL
generators (:mod:`.sqlite`, :mod:`.postgresql`) render. Nothing here writes SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

from signalhooks.registry import registry
from signalhooks.related import Plan, Relation, relations
from signalhooks.tracking import find_field


class Unsupported(ValueError):
    """A declaration that database capture cannot compile (reported by a system check)."""


@dataclass(frozen=True, slots=True)
class Condition:
    """``child.<column>`` must hold ``value`` (a database value; ``None`` is NULL)."""

    column: str
    value: Any


@dataclass(frozen=True, slots=True)
class Summed:
    """A parent column moved by each child row: +1 (a counter) or ``child.<of>`` (a total)."""

    column: str
    of: str | None
    conditions: tuple[Condition, ...]
    #: Counters never go below zero; totals may.
    clamped: bool


@dataclass(frozen=True, slots=True)
class Target:
    """The parent table holding some kept columns, found by ``<key> = child.<fk>``."""

    table: str
    key: str
    summed: tuple[Summed, ...]
    #: ``(column, is_datetime)``: set to now (a timestamp or a date).
    touches: tuple[tuple[str, bool], ...]


@dataclass(frozen=True, slots=True)
class Link:
    """One foreign key of the child table and the parent columns it keeps."""

    fk: str
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class TableSpec:
    """Everything the triggers of one child table keep, in declaration order."""

    table: str
    links: tuple[Link, ...]


def _column(field: Field[Any, Any]) -> tuple[str, str]:
    """Return ``(table, column)`` of a concrete field (an ancestor's table for inherited ones)."""
    model: type[Model] = field.model
    assert field.column is not None  # concrete fields only
    return model._meta.db_table, field.column


def link(relation: Relation, model: type[Model], connection: BaseDatabaseWrapper) -> Link:
    """Return what ``relation`` keeps for rows of ``model``; raise :class:`Unsupported`."""
    plan: Plan = relation.plan(model)
    label = f"{relation.kind}({plan.child._meta.label}, {relation.fk!r}, ...)"
    child_fields = [find_field(plan.child, name) for name in plan.names]
    own = plan.child._meta.db_table
    inherited = sorted(f.name for f in child_fields if f is not None and _column(f)[0] != own)
    if inherited:
        raise Unsupported(
            f"{label}: {', '.join(inherited)} live(s) in an ancestor's table (multi-table "
            f"inheritance), which a trigger on {own} cannot read and whose other rows it "
            "must not count."
        )
    fields: dict[str, Field[Any, Any]] = {f.name: f for f in child_fields if f is not None}

    def conditions(where: tuple[tuple[int, Any], ...]) -> tuple[Condition, ...]:
        found = []
        for index, value in where:
            field = fields[plan.names[index]]
            found.append(Condition(_column(field)[1], field.get_db_prep_value(value, connection)))
        return tuple(found)

    summed: dict[str, list[Summed]] = {}
    touched: dict[str, list[tuple[str, bool]]] = {}
    for name, where in plan.counters:
        table, column = _column(plan.fields[name])
        summed.setdefault(table, []).append(Summed(column, None, conditions(where), True))
    for name, where, index, _ in plan.totals:
        table, column = _column(plan.fields[name])
        of = _column(fields[plan.names[index]])[1]
        summed.setdefault(table, []).append(Summed(column, of, conditions(where), False))
    for touch, is_datetime in plan.touch_kinds:
        table, column = _column(touch)
        touched.setdefault(table, []).append((column, is_datetime))
    targets = []
    for table in dict.fromkeys([*summed, *touched]):
        if plan.target.primary_key:
            # Multi-table inheritance shares primary keys: any ancestor's pk column.
            holder = next(
                f.model for f in [*plan.fields.values(), *plan.touches] if _column(f)[0] == table
            )
            pk = holder._meta.pk
            assert pk is not None
            key = _column(pk)[1]
        elif _column(plan.target)[0] == table:
            key = _column(plan.target)[1]
        else:
            raise Unsupported(
                f"{label}: {plan.parent._meta.label}'s kept fields and the foreign key's "
                f"to_field {plan.target.name!r} are in different tables.",
            )
        targets.append(
            Target(table, key, tuple(summed.get(table, ())), tuple(touched.get(table, ())))
        )
    return Link(_column(fields[plan.fk_name])[1], tuple(targets))


def tables(connection: BaseDatabaseWrapper) -> dict[str, TableSpec]:
    """Return the trigger specification of every child table with declarations on ``connection``.

    Models the router keeps off this database get none. A declaration that cannot be
    compiled raises ``ValueError`` naming it: :class:`Unsupported`, or the declaration's
    own mistake (also reported by the checks signalhooks.E020-E028).
    """
    found: dict[str, list[Link]] = {}
    for relation, model in _kept(connection):
        found.setdefault(model._meta.db_table, []).append(link(relation, model, connection))
    return {table: TableSpec(table, tuple(links)) for table, links in sorted(found.items())}


def problems(connection: BaseDatabaseWrapper) -> list[str]:
    """Return why each declaration that no trigger can keep on ``connection`` cannot."""
    found = []
    for relation, model in _kept(connection):
        try:
            link(relation, model, connection)
        except ValueError as error:  # Unsupported, or the declaration's own mistake
            found.append(str(error))
    return found


def _kept(connection: BaseDatabaseWrapper) -> list[tuple[Relation, type[Model]]]:
    """Return the relations whose child table lives on ``connection``, with the child."""
    found = []
    for relation in relations():
        model = relation.model
        if model is not None and _migrated(connection, model):
            found.append((relation, model))
    return found


@dataclass(frozen=True, slots=True)
class Captured:
    """A table whose changes go to the outbox: the columns its rows' rules read."""

    table: str
    label: str
    pk: str
    #: ``(column, attname)`` of the fields the model's bulk handlers need.
    columns: tuple[tuple[str, str], ...]


def captured(connection: BaseDatabaseWrapper) -> dict[str, Captured]:
    """Return the tables whose writes the outbox records: models with cache rules, and
    the children whose counters, totals or touches move a parent that has them."""
    ruled = {
        _concrete(hook.model)
        for hook in registry.hooks()
        if hook.kind == "rule" and hook.bulk is not None and hook.model is not None
    }
    models = set(ruled)
    for relation, model in _kept(connection):
        if relation.plan(model).table in ruled:
            models.add(model)
    found = {}
    for model in sorted(models, key=lambda m: m._meta.label):
        if not _migrated(connection, model):
            continue
        pk = model._meta.pk
        assert pk is not None
        wanted = registry.bulk_fields(model) | {pk.attname}
        fields = [f for f in model._meta.concrete_fields if f.attname in wanted]
        if any(_column(f)[0] != model._meta.db_table for f in fields):
            continue  # an ancestor's column (multi-table inheritance): Python's path only
        table = model._meta.db_table
        columns = tuple((_column(f)[1], f.attname) for f in fields)
        found[table] = Captured(table, model._meta.label, _column(pk)[1], columns)
    return found


def _migrated(connection: BaseDatabaseWrapper, model: type[Model]) -> bool:
    """Return whether ``model``'s table is managed on ``connection`` (migrate creates it)."""
    return bool(
        model._meta.can_migrate(connection) and router.allow_migrate_model(connection.alias, model)
    )


def _concrete(model: type[Model]) -> type[Model]:
    concrete = model._meta.concrete_model
    assert concrete is not None
    return concrete
