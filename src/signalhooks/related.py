"""Related records: denormalised counters, sums and "touch the parent" timestamps.

Every ``counter()``, ``total()`` and ``touch()`` on one foreign key of one child model
belongs to one :class:`Relation`, which is registered as hooks in the registry:
``post_save`` (with the bulk handler) and ``post_delete`` do the work; ``pre_save`` and
``pre_delete`` read old values that a deferred-loading instance never held. A save that
moves the counts, the totals and the timestamp of a parent issues ONE ``UPDATE`` of that
parent, ``col = col + %s`` in the database (``F("col") + delta``), so concurrent saves
lose no increment: never read-modify-write.

The statement is compiled by Django's own ``UPDATE`` compiler once per shape, with
:class:`Slot` placeholders for the deltas and timestamps, then run on the cursor with
new parameters: the ORM's ``update()`` spends more time compiling than a small
``INSERT`` takes, and this statement runs on every save of a child.

The parent gets hooks too: its own saves (an edit view, the admin) write the fields
we keep as ``F(name)``, never the stale values they loaded.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from operator import itemgetter, or_
from typing import Any, Literal

from django.apps import apps
from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured
from django.db import router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    DEFERRED,
    Count,
    DecimalField,
    F,
    Field,
    FloatField,
    ForeignKey,
    IntegerField,
    Model,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.expressions import Combinable, Expression
from django.db.models.fields import DateField, DateTimeField
from django.db.models.fields.related import resolve_relation
from django.db.models.functions import Coalesce, Greatest
from django.db.models.sql.subqueries import UpdateQuery
from django.db.models.utils import make_model_tuple
from django.utils import timezone

from . import arguments
from .conf import conf
from .db import connection as connection_of
from .hooktypes import BulkChange, Event, Hook, ModelRef
from .observe import counters_moved, observers
from .registry import registry
from .tracking import find_field

#: The values a relation reads from one child row: the foreign key first, then the
#: fields its ``where=`` conditions name.
Values = tuple[Any, ...]
#: The field types a total sums and sums into.
NUMBERS = (IntegerField, DecimalField, FloatField)
#: Parents per ``UPDATE ... WHERE key IN (...)``: well under every database's limit.
BATCH = 500
#: Counters and touches run before user hooks of the same event (lower runs first),
#: so a ``post_save`` hook on the child already sees the parent's new values.
PRIORITY = -1000
#: The parent's write-back guard runs after every other ``pre_save`` hook of the
#: parent: it must see what they assigned, and they must never see its ``F()``.
GUARD_PRIORITY = 1_000_000


@dataclass(frozen=True, slots=True)
class Counter:
    """``parent.<field>`` = number of children pointing at it whose ``where`` fields match."""

    field: str
    where: tuple[tuple[str, Any], ...]
    source: str

    @property
    def key(self) -> tuple[str, tuple[tuple[str, Any], ...]]:
        return (self.field, self.where)

    def describe(self) -> str:
        if not self.where:
            return self.field
        return f"{self.field}[{', '.join(f'{k}={v!r}' for k, v in self.where)}]"


@dataclass(frozen=True, slots=True)
class Total:
    """``parent.<field>`` = sum of ``child.<of>`` over the children pointing at it (NULLs: 0)."""

    field: str
    of: str
    where: tuple[tuple[str, Any], ...]
    source: str

    @property
    def key(self) -> tuple[str, tuple[tuple[str, Any], ...]]:
        return (self.field, self.where)

    def describe(self) -> str:
        where = f"[{', '.join(f'{k}={v!r}' for k, v in self.where)}]" if self.where else ""
        return f"{self.field}=sum({self.of}){where}"


@dataclass(frozen=True, slots=True)
class Touch:
    """``parent.<field>`` = ``now()`` whenever a child is created, changed or deleted."""

    field: str
    source: str


@dataclass(frozen=True, slots=True)
class Problem:
    """A mistake in a declaration: raised as ``ValueError`` or reported as a system check."""

    id: str
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{self.message} {self.hint}"


class Plan:
    """A relation worked out for one child model class: what to read and what to write."""

    def __init__(self, relation: Relation, child: type[Model]) -> None:
        fk = find_field(child, relation.fk)
        assert isinstance(fk, ForeignKey)
        self.child = child
        self.fk_name = fk.name
        parent: type[Model] = fk.related_model
        table = parent._meta.concrete_model
        assert table is not None
        self.parent = parent
        self.table = table
        self.target: Field[Any, Any] = fk.target_field
        # "pk" reaches an ancestor's table too (a multi-table parent's counters).
        self.target_ref = "pk" if self.target.primary_key else self.target.attname
        # The child columns: the foreign key first, then the where= and of= fields.
        names, attnames = [fk.name], [fk.attname]
        for declared in relation.summed:
            keys = [key for key, _ in declared.where]
            for key in [*keys, declared.of] if isinstance(declared, Total) else keys:
                field = _field(child, key)
                if field.name not in names:
                    names.append(field.name)
                    attnames.append(field.attname)
        self.names = tuple(names)
        self.attnames = tuple(attnames)
        #: ``__dict__ -> Values`` in C (itemgetter of one name returns the bare value).
        self._row: Any = (
            itemgetter(*attnames) if len(attnames) > 1 else lambda d, a=attnames[0]: (d[a],)
        )
        self.counters = tuple(
            (counter.field, self._conditions(child, counter)) for counter in relation.counters
        )
        #: ``(field name, conditions, index of the summed value, its to_python)``.
        self.totals = tuple(
            (
                total.field,
                self._conditions(child, total),
                self.names.index(_field(child, total.of).name),
                _field(child, total.of).to_python,
            )
            for total in relation.totals
        )
        #: ``(field name, where kwargs, summed field or None)`` for recount(): the same
        #: conditions in SQL.
        self.recount = (
            *((c.field, dict(c.where), None) for c in relation.counters),
            *((t.field, dict(t.where), t.of) for t in relation.totals),
        )
        fields = {d.field: _field(table, d.field) for d in relation.summed}
        self.fields = fields
        self.nullable = frozenset(name for name, field in fields.items() if field.null)
        #: Counts never go below zero; totals may (a negative amount is an amount).
        self.clamped = frozenset(name for name, _ in self.counters)
        self.touches = tuple(_field(table, t.field) for t in relation.touches)
        self.touch_kinds = tuple((t, isinstance(t, DateTimeField)) for t in self.touches)
        written = [*fields.values(), *self.touches, self.target]
        # A field of an ancestor table (multi-table inheritance) needs the ORM's update.
        self.local = all(f.model._meta.concrete_model is table for f in written)
        #: The parent attributes to forget on a parent held in memory.
        self.attributes = tuple(f.attname for f in [*fields.values(), *self.touches])
        #: ``shape -> (SQL, parameter template)``: see :meth:`_compile`.
        self._sql: dict[tuple[Any, ...], tuple[str, tuple[Any, ...] | None]] = {}
        #: ``(using, the parent's bulk hooks) -> Returning | None``: see :meth:`_returning`.
        self._returns: dict[tuple[str, tuple[Hook, ...]], Returning | None] = {}

    def _conditions(
        self, child: type[Model], counter: Counter | Total
    ) -> tuple[tuple[int, Any], ...]:
        conditions = []
        for key, value in counter.where:
            field = find_field(child, key)
            assert field is not None
            if isinstance(value, Model) and isinstance(field, ForeignKey):
                # Rows hold the raw column value of a foreign key, not the object.
                value = getattr(value, field.target_field.attname)
            conditions.append((self.names.index(field.name), value))
        return tuple(conditions)

    # -- reading the child ---------------------------------------------------------------
    def current(self, instance: Model, update_fields: frozenset[str] | None) -> Values:
        """Return the values of ``instance``'s row as the save just wrote it."""
        d = instance.__dict__
        if update_fields is None:
            # Every field was written, so loaded: a save of a deferred-loaded instance
            # gets update_fields from Django (the loaded ones).
            row: Values = self._row(d)
            return row
        # save(update_fields=...) (or a save of a deferred-loaded instance) wrote only
        # those fields: the others keep what was loaded, not what is in memory.
        return tuple(
            d.get(a, DEFERRED) if n in update_fields or a in update_fields else _loaded(instance, a)
            for n, a in zip(self.names, self.attnames, strict=True)
        )

    def old(self, changes: Mapping[str, tuple[Any, Any]], current: Values) -> Values:
        """Return the values before the save (or delete): tracked old values, else current."""
        return tuple(
            changes[n][0] if n in changes else v for n, v in zip(self.names, current, strict=True)
        )

    def fill(self, instance: Model, values: Values, using: str) -> Values:
        """Read from the database the values nobody loaded (deferred fields)."""
        missing = [a for a, v in zip(self.attnames, values, strict=True) if v is DEFERRED]
        manager = type(instance)._base_manager.db_manager(using)
        row = manager.filter(pk=instance.pk).values(*missing).first() or {}
        return tuple(
            row.get(a) if v is DEFERRED else v for a, v in zip(self.attnames, values, strict=True)
        )

    # -- writing the parents -------------------------------------------------------------
    def deltas(self, rows: Iterable[tuple[Values | None, Values | None]]) -> dict[Any, list[Any]]:
        """Group the parents of ``rows`` by their change: ``{((field, delta), ...): [key]}``."""
        totals: dict[Any, dict[str, Any]] = {}
        for before, after in rows:
            for values, sign in ((before, -1), (after, 1)):
                if values is None or values[0] is None:
                    continue
                fields = totals.setdefault(values[0], {})
                for name, conditions in self.counters:
                    if not conditions or all(values[i] == value for i, value in conditions):
                        fields[name] = fields.get(name, 0) + sign
                for name, conditions, index, to_python in self.totals:
                    amount = values[index]
                    if amount is not None and all(values[i] == v for i, v in conditions):
                        # What was assigned, not yet what the database holds ("1.50").
                        fields[name] = fields.get(name, 0) + sign * to_python(amount)
        groups: defaultdict[Any, list[Any]] = defaultdict(list)
        for key, fields in totals.items():
            if 0 in fields.values():  # moved out and back in: no change for that field
                fields = {name: delta for name, delta in fields.items() if delta}
            change = tuple(sorted(fields.items()))
            if change or self.touches:
                groups[change].append(key)
        return groups

    def update(self, using: str, groups: Mapping[Any, list[Any]]) -> None:
        """Write each group's change with one UPDATE (per ``BATCH`` parents)."""
        if observers:
            counters_moved(self.parent, groups)
        now = timezone.now()
        # The parent's own bulk handlers (its cache rules) get the rows that changed,
        # read back by the UPDATE itself where the database can (RETURNING).
        bulk = registry.bulk_hooks(self.parent)
        if conf.CAPTURE == "database":
            # The triggers of signalhooks.capture wrote it in the child's own statement;
            # the parent's cache rules still run here, on the parents' rows read back.
            if bulk:
                self.run_parent_bulk(using, [key for keys in groups.values() for key in keys])
            return
        returning = self._returning(using, bulk) if bulk else None
        rows: list[dict[str, Any]] = []
        for change, keys in groups.items():
            if len(keys) <= BATCH:  # the common case: no batching to set up
                self._write(using, change, keys, now, returning, rows)
                continue
            for batch in _batches(keys):
                self._write(using, change, batch, now, returning, rows)
        if not bulk:
            return
        if returning is None:  # an ancestor's column, or no UPDATE ... RETURNING: SELECT
            keys = [key for keys in groups.values() for key in keys]
            self.run_parent_bulk(using, keys)
        else:
            registry.run_bulk(self.parent, using, "update", [(row, row) for row in rows])

    def _returning(self, using: str, bulk: tuple[Hook, ...]) -> Returning | None:
        """Return how the UPDATE reads back the columns ``bulk`` needs; None if it cannot."""
        key = (using, bulk)
        found = self._returns.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = self._returns[key] = self._read_back(using)
        return found  # type: ignore[no-any-return]

    def _read_back(self, using: str) -> Returning | None:
        connection = connection_of(using)
        table = self.table
        names = tuple(sorted(registry.bulk_fields(self.parent) | {"pk"}))
        found = [table._meta.pk if n == "pk" else find_field(self.parent, n) for n in names]
        fields: list[Field[Any, Any]] = [f for f in dict.fromkeys(found) if f is not None]
        # The compiled UPDATE writes one table: it can return only that table's columns.
        if not (
            self.local
            and None not in found
            and all(f.model._meta.concrete_model is table for f in fields)
            and can_return_from_update(connection)
        ):
            return None
        cols = [f.get_col(table._meta.db_table) for f in fields]
        return Returning(
            sql=" RETURNING " + ", ".join(connection.ops.quote_name(str(f.column)) for f in fields),
            names=tuple((n, fields.index(f)) for n, f in zip(names, found, strict=True)),  # type: ignore[arg-type]
            converters=tuple(
                tuple(
                    (convert, col)
                    for convert in [
                        *connection.ops.get_db_converters(col),
                        *col.get_db_converters(connection),
                    ]
                )
                for col in cols
            ),
        )

    def run_parent_bulk(self, using: str, keys: Sequence[Any]) -> None:
        columns = sorted(registry.bulk_fields(self.parent) | {"pk"})
        manager = self.parent._base_manager.db_manager(using)
        for batch in _batches(keys):
            rows = manager.filter(**{f"{self.target_ref}__in": batch}).values(*columns)
            registry.run_bulk(self.parent, using, "update", [(row, row) for row in rows])

    def _write(
        self,
        using: str,
        change: tuple[tuple[str, Any], ...],
        keys: Sequence[Any],
        now: Any,
        returning: Returning | None = None,
        rows: list[dict[str, Any]] | None = None,
    ) -> None:
        if not self.local:
            # A field of an ancestor table (multi-table inheritance): the ORM's update
            # finds the ancestor rows first, which one compiled statement cannot.
            operands: list[Any] = [delta for _, delta in change]
            operands.extend(now for _ in self.touches)
            updates = self._values(change, operands)
            manager = self.parent._base_manager.db_manager(using)
            manager.filter(**{f"{self.target_ref}__in": keys}).update(**updates)
            return
        # Plain loops, no generators: this runs on every save of a child.
        connection = connection_of(using)
        clamped = self.clamped
        shape: list[Any] = [using, len(keys)]
        values: list[Any] = []
        for name, delta in change:
            if name in clamped:
                shape.append((name, delta < 0))
                values.append(delta)
            else:  # a total: a Decimal or float adapted as its column wants
                shape.append((name, False))
                values.append(self.fields[name].get_db_prep_value(delta, connection))
        if returning is not None:
            shape.append(returning.sql)
        key = tuple(shape)
        compiled = self._sql.get(key)
        if compiled is None:
            compiled = self._sql[key] = self._compile(using, change, len(keys), returning)
        sql, template = compiled
        # prepared=True: ``now`` is already what a DateTimeField holds (an aware datetime,
        # a date for a DateField), only the backend's adaptation is left to do.
        for touch, is_datetime in self.touch_kinds:
            value = now if is_datetime else touch.to_python(now)
            values.append(touch.get_db_prep_value(value, connection, True))
        params = (
            values
            if template is None
            else [values[slot] if slot.__class__ is int else slot[0] for slot in template]
        )
        target = self.target
        for key_value in keys:
            params.append(target.get_db_prep_value(key_value, connection))
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                if returning is not None:
                    assert rows is not None
                    rows.extend(returning.rows(cursor.fetchall(), connection))
        except Exception:
            # What transaction.mark_for_rollback_on_error() does, without a generator
            # on the path of every save: the failed UPDATE dooms the outer transaction.
            if connection.in_atomic_block:
                connection.needs_rollback = True
            raise

    def _values(self, change: tuple[tuple[str, Any], ...], values: Sequence[Any]) -> dict[str, Any]:
        """Return ``update()`` keyword arguments: each field moved by its value in ``values``.

        ``values`` holds the deltas of ``change``, then the touches' timestamp.
        """
        updates: dict[str, Any] = {}
        for index, (name, delta) in enumerate(change):
            field = self.fields[name]
            current: Combinable = (
                Coalesce(F(name), Value(0), output_field=field) if field.null else F(name)
            )
            moved = current + _value(values[index], field)
            # A count never goes below zero: a counter that drifted (rows written
            # before it existed) must not make deletes fail on a positive-only column.
            clamp = delta < 0 and name in self.clamped
            updates[name] = Greatest(moved, Value(0), output_field=field) if clamp else moved
        for offset, touch in enumerate(self.touches, len(change)):
            updates[touch.name] = values[offset]
        return updates

    def _compile(
        self,
        using: str,
        change: tuple[tuple[str, Any], ...],
        count: int,
        returning: Returning | None = None,
    ) -> tuple[str, tuple[Any, ...] | None]:
        """Compile the UPDATE of ``change`` for ``count`` parents through Django's compiler.

        The deltas and timestamps are compiled as :class:`Slot` placeholders, so the
        SQL (quoting, casts, functions: every backend's own) is reused with new
        parameters. Return the SQL and, per parameter before the keys, a slot index
        into the per-execution values or a ``(constant,)`` Django put there itself.
        """
        fields = [self.fields[name] for name, _ in change] + list(self.touches)
        slots = [Slot(index, field) for index, field in enumerate(fields)]
        query = UpdateQuery(self.table)
        query.add_update_values(self._values(change, slots))
        # Distinct stand-ins for the keys: Django drops repeated values from IN (...).
        query.add_q(Q(**{f"{self.target.attname}__in": range(1, count + 1)}))
        sql, params = query.get_compiler(using).as_sql()
        if returning is not None:
            sql += returning.sql
        template = tuple(p.index if isinstance(p, Slot) else (p,) for p in params[:-count])
        # None: the parameters are the values in order (no constants of Django's own).
        return sql, None if template == tuple(range(len(template))) else template

    def forget(self, instance: Model) -> None:
        """Drop the kept fields from the parent ``instance`` holds, so they reload."""
        parent = instance._state.fields_cache.get(self.fk_name)
        if parent is not None:
            _unload(parent, self.attributes)


class Relation:
    """The counters and touches of one foreign key of one child model, and their hooks.

    Immutable once registered: a further ``counter()`` or ``touch()`` on the same
    foreign key registers a new relation in place of this one, so undoing a
    registration (``registry.isolated()``) gives back exactly the old behaviour.
    """

    def __init__(
        self,
        child: ModelRef,
        fk: str,
        counters: tuple[Counter, ...] = (),
        touches: tuple[Touch, ...] = (),
        source: str = "",
        totals: tuple[Total, ...] = (),
    ) -> None:
        self.child = child
        #: Where the relation was first declared (each counter keeps its own source).
        self.source = source
        self.fk = fk
        self.counters = counters
        self.touches = touches
        self.totals = totals
        self.hooks: tuple[Hook, ...] = ()
        self._plans: dict[type[Model], Plan] = {}
        self._parent_attnames: dict[type[Model], tuple[tuple[str, str], ...]] = {}
        # Keys in a child's __dict__: its old values read in pre_save / pre_delete.
        self._old = f"_signalhooks_related_old_{id(self)}"
        self._stash = f"_signalhooks_related_deleted_{id(self)}"

    @property
    def key(self) -> tuple[tuple[str, str], str]:
        return (make_model_tuple(self.child), self.fk)

    @property
    def kind(self) -> Literal["counter", "total", "touch"]:
        return "counter" if self.counters else "total" if self.totals else "touch"

    @property
    def label(self) -> str:
        parts = []
        if self.counters:
            parts.append("counter " + ", ".join(c.describe() for c in self.counters))
        if self.totals:
            parts.append("total " + ", ".join(t.describe() for t in self.totals))
        if self.touches:
            parts.append("touch " + ", ".join(t.field for t in self.touches))
        return f"related({self.fk}: {'; '.join(parts)})"

    def plan(self, model: type[Model]) -> Plan:
        """Return the plan for saves of ``model``; raise ``ValueError`` if it cannot work."""
        plan = self._plans.get(model)
        if plan is None:
            # Saves through a proxy of the child are saves of the child's rows.
            concrete = model._meta.concrete_model
            assert concrete is not None
            problems = self.problems(concrete)
            if problems:
                raise ValueError(str(problems[0]))
            plan = self._plans[model] = Plan(self, concrete)
        return plan

    @property
    def summed(self) -> tuple[Counter | Total, ...]:
        """Return the counters and totals: the fields that move by deltas."""
        return (*self.counters, *self.totals)

    @property
    def kept(self) -> tuple[str, ...]:
        """Return the parent fields this relation writes (counters, totals, touches)."""
        return (*(d.field for d in self.summed), *(t.field for t in self.touches))

    def _kept_attnames(self, parent: type[Model]) -> tuple[tuple[str, str], ...]:
        attnames = self._parent_attnames.get(parent)
        if attnames is None:
            fields = [find_field(parent, name) for name in self.kept]
            attnames = tuple((f.name, f.attname) for f in fields if f is not None)
            self._parent_attnames[parent] = attnames
        return attnames

    # -- the parent's own saves ----------------------------------------------------------
    def on_parent_pre_save(
        self, *, instance: Model, update_fields: frozenset[str] | None, **kwargs: Any
    ) -> None:
        """Write our fields of a parent as the database has them, unless the user set them.

        ``post = Post.objects.get(...); post.title = "x"; post.save()`` (a ModelForm,
        the admin) would otherwise write back the count it loaded and undo every
        child saved since. ``F(name)`` makes the UPDATE set the column to itself.
        """
        if instance._state.adding:
            return
        d = instance.__dict__
        for name, attname in self._kept_attnames(type(instance)):
            if attname not in d:
                continue  # deferred: Django does not write it
            if (
                update_fields is not None
                and name not in update_fields
                and attname not in update_fields
            ):
                continue  # not written by this save
            value = d[attname]
            if _is_expression(value):
                continue  # the user's own F() or expression
            loaded = _loaded(instance, attname)
            # DEFERRED: read lazily after the instance loaded (or after our last
            # save dropped it), so a copy of the row at that moment, not an assignment.
            if loaded is DEFERRED or value == loaded:
                d[attname] = F(name)

    def on_parent_saved(self, *, instance: Model, **kwargs: Any) -> None:
        """Drop the ``F()`` left on the parent: the next read loads the fresh value."""
        d = instance.__dict__
        expressions = [
            attname
            for _, attname in self._kept_attnames(type(instance))
            if _is_expression(d.get(attname))
        ]
        # Django 6.0+ reads expressions back itself on backends with RETURNING.
        if expressions:  # pragma: no cover - Django 5.2, or a backend without RETURNING
            _unload(instance, expressions)

    # -- hooks ---------------------------------------------------------------------------
    def on_pre_save(
        self, *, instance: Model, changes: Mapping[str, tuple[Any, Any]], using: str, **kwargs: Any
    ) -> None:
        d = instance.__dict__
        d.pop(self._old, None)
        if instance._state.adding or not changes:
            return  # the common case: a dict look-up and out
        plan = self._plans.get(type(instance)) or self.plan(type(instance))
        if any(n in changes and changes[n][0] is DEFERRED for n in plan.names):
            # Loaded without the field, then assigned: the save is about to overwrite
            # a value nobody read. Read it now, while the row still holds it.
            d[self._old] = plan.fill(instance, (DEFERRED,) * len(plan.names), using)

    def on_save(
        self,
        *,
        instance: Model,
        created: bool,
        changes: Mapping[str, tuple[Any, Any]],
        update_fields: frozenset[str] | None,
        using: str,
        **kwargs: Any,
    ) -> None:
        plan = self._plans.get(type(instance)) or self.plan(type(instance))
        old: Values | None = instance.__dict__.pop(self._old, None)
        after = plan.current(instance, update_fields)
        # Django 6.0+ reads expressions back itself on backends with RETURNING.
        if plan.totals and any(map(_is_expression, after)):  # pragma: no cover - Django 5.2
            # amount=F("amount") + 1: only the database knows what the save wrote,
            # and the instance must not keep the F() as a value to sum next time.
            written = [a for a, v in zip(plan.attnames, after, strict=True) if _is_expression(v)]
            after = plan.fill(
                instance, tuple(DEFERRED if _is_expression(v) else v for v in after), using
            )
            _unload(instance, written)
        if DEFERRED in after:
            # Columns this save did not write and nobody loaded: still what they were.
            after = (
                plan.fill(instance, after, using)
                if old is None
                else tuple(o if v is DEFERRED else v for o, v in zip(old, after, strict=True))
            )
        before: Values | None = None
        if not created:
            before = old or plan.old(changes, after)
            if before == after and not plan.touches:
                return  # nothing this relation counts moved
        groups = plan.deltas([(before, after)])
        if groups:
            plan.update(using, groups)
            plan.forget(instance)

    def on_pre_delete(
        self, *, instance: Model, changes: Mapping[str, tuple[Any, Any]], using: str, **kwargs: Any
    ) -> None:
        # Read the row's values while it exists: a deferred field cannot load after.
        plan = self._plans.get(type(instance)) or self.plan(type(instance))
        d = instance.__dict__
        values = plan.old(changes, tuple(d.get(a, DEFERRED) for a in plan.attnames))
        if DEFERRED in values:
            values = plan.fill(instance, values, using)
        d[self._stash] = values

    def on_delete(
        self,
        *,
        instance: Model,
        changes: Mapping[str, tuple[Any, Any]],
        using: str,
        origin: Any = None,
        **kwargs: Any,
    ) -> None:
        plan = self._plans.get(type(instance)) or self.plan(type(instance))
        d = instance.__dict__
        before: Values | None = d.pop(self._stash, None)
        if before is None:  # post_delete sent by other code, without pre_delete
            before = plan.old(changes, tuple(d.get(a) for a in plan.attnames))
        if isinstance(origin, plan.table) and getattr(origin, plan.target.attname) == before[0]:
            return  # a cascade from deleting this very parent: nothing left to count
        groups = plan.deltas([(before, None)])
        if groups:
            plan.update(using, groups)
            plan.forget(instance)

    def on_bulk(self, change: BulkChange) -> None:
        plan = self.plan(change.model)
        attnames = plan.attnames

        def values(row: Mapping[str, Any] | None) -> Values | None:
            return None if row is None else tuple(row[a] for a in attnames)

        groups = plan.deltas((values(before), values(after)) for before, after in change.rows)
        if groups:
            plan.update(change.using, groups)

    # -- validation ----------------------------------------------------------------------
    def check(self, model: type[Model]) -> list[CheckMessage]:
        return [
            Error(p.message, hint=p.hint, obj=model, id=f"signalhooks.{p.id}")
            for p in self.problems(model, others=_live().values())
        ]

    def problems(self, model: type[Model], others: Iterable[Relation] = ()) -> list[Problem]:
        """Return what stops this relation from working on ``model`` (none: it works)."""
        label = model._meta.label
        call = f"{self.kind}({label}, {self.fk!r}, ...) ({self.source})"
        if model._meta.proxy:
            concrete = model._meta.concrete_model
            assert concrete is not None
            return [
                Problem(
                    "E024",
                    f"{call}: {label} is a proxy model, but its rows are also saved through "
                    f"{concrete._meta.label} and its other proxies.",
                    f"Declare it on {concrete._meta.label} (use where= to count only some rows).",
                )
            ]
        fk = find_field(model, self.fk)
        if not isinstance(fk, ForeignKey):
            keys = [f.name for f in model._meta.concrete_fields if isinstance(f, ForeignKey)]
            return [
                Problem(
                    "E020",
                    f"{call}: {_describe(model, self.fk, fk, 'a foreign key')}.",
                    f"Name one of its foreign keys: {', '.join(keys) or '(none)'}.",
                )
            ]
        parent: type[Model] = fk.related_model
        problems = [p for c in self.counters for p in self._counter_problems(model, parent, c)]
        problems.extend(p for t in self.totals for p in self._total_problems(model, parent, t))
        problems.extend(
            problem
            for touch in self.touches
            for problem in _field_problem(
                "E022",
                f"touch({label}, {self.fk!r}, {touch.field!r}) ({touch.source})",
                parent,
                touch.field,
                DateField,
                "a DateTimeField or DateField",
                "Touch a date/time field",
                ("updated_at", "models.DateTimeField(null=True)"),
            )
        )
        problems.extend(self._duplicates(model, parent, others))
        return problems

    def _counter_problems(
        self, model: type[Model], parent: type[Model], counter: Counter
    ) -> Iterator[Problem]:
        call = f"counter({model._meta.label}, {self.fk!r}, {counter.field!r}) ({counter.source})"
        yield from _field_problem(
            "E021",
            call,
            parent,
            counter.field,
            IntegerField,
            "an integer field",
            "Count into an integer field",
            ("comment_count", "models.PositiveIntegerField(default=0)"),
        )
        yield from _where_problems(call, model, counter)

    def _total_problems(
        self, model: type[Model], parent: type[Model], total: Total
    ) -> Iterator[Problem]:
        call = (
            f"total({model._meta.label}, {self.fk!r}, {total.field!r}, of={total.of!r}) "
            f"({total.source})"
        )
        yield from _field_problem(
            "E026",
            call,
            parent,
            total.field,
            NUMBERS,
            "a numeric field",
            "Sum into an IntegerField, DecimalField or FloatField",
            ("total", "models.DecimalField(max_digits=12, decimal_places=2, default=0)"),
        )
        of = find_field(model, total.of)
        if not isinstance(of, NUMBERS):
            yield Problem(
                "E027",
                f"{call}: {_describe(model, total.of, of, 'a numeric field')}.",
                f"of= names the {model.__name__} field to sum; numeric fields: "
                + (
                    ", ".join(f.name for f in model._meta.concrete_fields if _summable(f))
                    or "(none)"
                )
                + ".",
            )
        elif isinstance(find_field(parent, total.field), IntegerField) and not isinstance(
            of, IntegerField
        ):
            yield Problem(
                "E028",
                f"{call}: {parent._meta.label}.{total.field} is an integer field, but "
                f"{model._meta.label}.{of.name} is a {type(of).__name__}: the fractions "
                "would be lost.",
                f"Make {parent.__name__}.{total.field} a {type(of).__name__} too.",
            )
        yield from _where_problems(call, model, total)

    def _duplicates(
        self, model: type[Model], parent: type[Model], others: Iterable[Relation]
    ) -> Iterator[Problem]:
        """A parent field counted twice would move twice and could not be recounted."""
        table = parent._meta.concrete_model
        kept: dict[str, tuple[Relation, Counter | Total]] = {}
        for other in others:
            other_model = _model_or_none(other.child)
            if other.key == self.key or other_model is None:
                continue
            other_fk = find_field(other_model, other.fk)
            if isinstance(other_fk, ForeignKey) and (
                other_fk.related_model._meta.concrete_model is table
            ):
                kept.update({c.field: (other, c) for c in other.summed})
        for counter in self.summed:
            kept_by, first = kept.setdefault(counter.field, (self, counter))
            if first is not counter:
                yield Problem(
                    "E025",
                    f"{_call(model._meta.label, self.fk, counter)} ({counter.source}): "
                    f"{parent._meta.label}.{counter.field} is already kept by "
                    f"{_call(kept_by.child_label, kept_by.fk, first)} at {first.source}.",
                    "Count each relation (and each where=) into a field of its own.",
                )

    @property
    def model(self) -> type[Model] | None:
        """Return the child model class, ``None`` while (or if) it is not installed."""
        return _model_or_none(self.child)

    @property
    def child_label(self) -> str:
        return self.child if isinstance(self.child, str) else self.child._meta.label

    # -- registration --------------------------------------------------------------------
    def register(self) -> None:
        common: dict[str, Any] = {
            "sender": self.child,
            "kind": self.kind,
            "label": self.label,
            "priority": PRIORITY,
            "source": self.source,
            # Old values of the foreign key and the where= fields: names as given,
            # the registry resolves them (and drops any that the checks report).
            "track": frozenset(
                {
                    self.fk,
                    *(k for c in self.summed for k, _ in c.where),
                    *(t.of for t in self.totals),
                }
            ),
            "details": {
                "counters": [c.describe() for c in self.counters],
                "totals": [t.describe() for t in self.totals],
                "touches": [t.field for t in self.touches],
            },
        }
        save = Hook(
            func=self.on_save, event=Event.POST_SAVE, bulk=self.on_bulk, check=self.check, **common
        )
        pre_save = Hook(func=self.on_pre_save, event=Event.PRE_SAVE, **common)
        pre_delete = Hook(func=self.on_pre_delete, event=Event.PRE_DELETE, **common)
        post_delete = Hook(func=self.on_delete, event=Event.POST_DELETE, **common)
        self.hooks = (pre_save, save, pre_delete, post_delete)

        def resolved(model: type[Model]) -> None:
            # The bulk handler needs the attnames, known once the child model exists.
            fields = [find_field(model, name) for name in common["track"]]
            save.bulk_fields = frozenset(f.attname for f in fields if f is not None)
            fk = find_field(model, self.fk)
            if isinstance(fk, ForeignKey):  # anything else is reported by the checks
                self.hooks = (*self.hooks, *self._guard_hooks(model, fk))

        for hook in self.hooks:
            registry.add(hook)
        if not apps.models_ready:
            apps.lazy_model_operation(resolved, make_model_tuple(self.child))
        elif (model := _model_or_none(self.child)) is not None:
            resolved(model)

    def _guard_hooks(self, child: type[Model], fk: ForeignKey[Any, Any]) -> tuple[Hook, ...]:
        """Register (and return) the parent's hooks that keep its own saves off our fields."""
        kept = self.kept
        # The parent may not be loaded yet: a lazy "app_label.Model" reference then.
        parent: ModelRef = resolve_relation(child, fk.remote_field.model)
        common: dict[str, Any] = {
            "sender": parent,
            "kind": self.kind,
            "label": f"keep({self.child_label}.{self.fk}: {', '.join(kept)})",
            "source": self.source,
            # The loaded values are the baseline that tells an assignment from a stale copy.
            "track": frozenset(kept),
        }
        hooks = (
            Hook(
                func=self.on_parent_pre_save,
                event=Event.PRE_SAVE,
                priority=GUARD_PRIORITY,
                **common,
            ),
            Hook(func=self.on_parent_saved, event=Event.POST_SAVE, priority=PRIORITY, **common),
        )
        for hook in hooks:
            registry.add(hook)
        return hooks


def can_return_from_update(connection: BaseDatabaseWrapper) -> bool:
    """Return whether ``UPDATE ... RETURNING`` works on ``connection``.

    PostgreSQL, and SQLite from 3.35 (Django 5.2 says so for INSERT, whose RETURNING
    came in the same release; Django 6.0+ has a flag for UPDATE). Oracle's RETURNING
    needs INTO; MySQL and MariaDB have none for UPDATE.
    """
    features = connection.features
    return connection.vendor in ("postgresql", "sqlite") and bool(
        getattr(features, "can_return_rows_from_update", features.can_return_columns_from_insert)
    )


@dataclass(frozen=True, slots=True)
class Returning:
    """How a parent UPDATE reads back the columns its bulk handlers need, in one statement."""

    #: `` RETURNING col, ...``, appended to the compiled UPDATE.
    sql: str
    #: ``(name, index of its column)``: the keys of each row, as ``values(*names)`` has them.
    names: tuple[tuple[str, int], ...]
    #: Per column, the ``(converter, column)`` pairs that make a Python value of it.
    converters: tuple[tuple[tuple[Any, Any], ...], ...]

    def rows(
        self, fetched: Iterable[Sequence[Any]], connection: BaseDatabaseWrapper
    ) -> list[dict[str, Any]]:
        """Return ``fetched`` as the rows ``values()`` would give."""

        def convert(value: Any, step: tuple[Any, Any]) -> Any:
            return step[0](value, step[1], connection)

        converted = [
            [
                reduce(convert, steps, value)
                for value, steps in zip(row, self.converters, strict=True)
            ]
            for row in fetched
        ]
        return [{name: row[index] for name, index in self.names} for row in converted]


_UNSEEN: Any = object()


class Slot(Expression):
    """A parameter of a compiled statement, filled in on each execution."""

    def __init__(self, index: int, output_field: Field[Any, Any]) -> None:
        super().__init__(output_field=output_field)
        self.index = index

    def as_sql(self, compiler: Any, connection: BaseDatabaseWrapper) -> tuple[str, Any]:
        return "%s", (self,)


def _value(value: Any, field: Field[Any, Any]) -> Any:
    """Return ``value`` as an operand of ``F(field) + value`` (typed, for the databases)."""
    return value if isinstance(value, Slot) else Value(value, output_field=field)


def _field(model: type[Model], name: str) -> Field[Any, Any]:
    field = find_field(model, name)
    assert field is not None
    return field


def _describe(model: type[Model], name: str, field: Field[Any, Any] | None, wanted: str) -> str:
    if field is None:
        return f"{model._meta.label} has no field {name!r}"
    return f"{model._meta.label}.{name} is a {type(field).__name__}, not {wanted}"


def _field_problem(
    code: str,
    call: str,
    model: type[Model],
    name: str,
    kinds: type[Field[Any, Any]] | tuple[type[Field[Any, Any]], ...],
    wanted: str,
    advice: str,
    example: tuple[str, str],
) -> Iterator[Problem]:
    """Yield a problem if ``model.<name>`` is missing or not one of ``kinds``.

    The hint shows the field to add: ``name`` if it is missing, else ``example``'s name.
    """
    field = find_field(model, name)
    if not isinstance(field, kinds):
        suggested, declaration = example
        yield Problem(
            code,
            f"{call}: {_describe(model, name, field, wanted)}.",
            f"{advice}, e.g. add {name if field is None else suggested} = {declaration} "
            f"to {model.__name__}.",
        )


def _call(child: str, fk: str, declared: Counter | Total) -> str:
    """Return the call that declared ``declared``, as the user wrote it."""
    where = f", where={dict(declared.where)!r}" if declared.where else ""
    if isinstance(declared, Total):
        return f"total({child}, {fk!r}, {declared.field!r}, of={declared.of!r}{where})"
    return f"counter({child}, {fk!r}, {declared.field!r}{where})"


def _summable(field: Field[Any, Any]) -> bool:
    return isinstance(field, NUMBERS) and not field.primary_key and not field.is_relation


def _where_problems(call: str, model: type[Model], declared: Counter | Total) -> Iterator[Problem]:
    for key, _ in declared.where:
        if find_field(model, key) is None:
            yield Problem(
                "E023",
                f"{call}: where= names {key!r}, which is not a field of {model._meta.label}.",
                "where= takes exact field values, e.g. where={'approved': True}; fields: "
                + ", ".join(f.name for f in model._meta.concrete_fields)
                + ".",
            )


def _batches(keys: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(keys), BATCH):
        yield keys[start : start + BATCH]


def _loaded(instance: Model, attname: str) -> Any:
    """Return the value of ``attname`` when ``instance`` was loaded or last saved."""
    tracker = registry.tracker(type(instance))
    assert tracker is not None  # relations track their columns
    return tracker.loaded(instance, attname)


def _is_expression(value: Any) -> bool:
    return hasattr(value, "resolve_expression")


def _unload(instance: Model, attnames: Sequence[str]) -> None:
    """Drop ``attnames`` from ``instance`` so they load fresh, as if deferred at load time.

    Their baseline becomes "not loaded" too: the value a later read loads is a copy of
    the row, not an assignment, and must not count as a change.
    """
    d = instance.__dict__
    for attname in attnames:
        d.pop(attname, None)
    tracker = registry.tracker(type(instance))
    assert tracker is not None  # relations track their columns
    tracker.forget(instance, attnames)


def _model_or_none(ref: ModelRef) -> type[Model] | None:
    if not isinstance(ref, str):
        return ref
    try:
        return apps.get_model(ref)
    except LookupError:
        return None  # reported by the system check signalhooks.E001


def _live() -> dict[tuple[tuple[str, str], str], Relation]:
    """Return the registered relations by (child, foreign key): the registry is the truth."""
    found: dict[tuple[tuple[str, str], str], Relation] = {}
    for hook in registry.hooks():
        relation = getattr(hook.func, "__self__", None)
        if isinstance(relation, Relation):
            found[relation.key] = relation
    return found


def _declare(decorator: str, child: ModelRef, fk: str, declared: Counter | Total | Touch) -> None:
    (child,) = arguments.senders(decorator, (child,))
    if not isinstance(child, str) and (field := find_field(child, fk)) is not None:
        fk = field.name  # "post_id" and "post" are one relation
    current = _live().get((make_model_tuple(child), fk))
    counters = current.counters if current else ()
    touches = current.touches if current else ()
    totals = current.totals if current else ()
    if isinstance(declared, Counter):
        if any(c.key == declared.key for c in counters):
            return  # declared again (a module imported twice): nothing changes
        counters = (*counters, declared)
    elif isinstance(declared, Total):
        if any(t.key == declared.key and t.of == declared.of for t in totals):
            return
        totals = (*totals, declared)
    else:
        if any(t.field == declared.field for t in touches):
            return
        touches = (*touches, declared)
    relation = Relation(
        current.child if current else child,
        fk,
        counters,
        touches,
        current.source if current else declared.source,
        totals,
    )
    model = _model_or_none(relation.child) if apps.models_ready else None
    if model is not None:
        problems = relation.problems(model, others=_live().values())
        if problems:
            # Each names its own declaration and where it is: not always this one.
            raise ImproperlyConfigured("\n".join(map(str, problems)))
    # Declared while the models load: finish_relations() refuses mistakes in ready().
    if current is not None:
        for hook in current.hooks:
            registry.remove(hook)
    relation.register()


def finish_relations() -> None:
    """Refuse, from ``ready()``, the relations declared while the models loaded that cannot work.

    What a ``models.py`` declares cannot be checked there (the parent may not exist yet);
    this stops start-up on every server, naming each wrong declaration and where it is.
    """
    live = _live().values()
    problems = [
        str(problem)
        for relation in live
        if (model := _model_or_none(relation.child)) is not None
        for problem in relation.problems(model, others=live)
    ]
    if problems:
        raise ImproperlyConfigured(
            "signalhooks: these counter(), total() and touch() declarations cannot work:\n"
            + "\n".join(f"  {problem}" for problem in problems)
        )


def _source() -> str:
    frame = sys._getframe(2)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def counter(
    child: ModelRef, fk: str, field: str, *, where: Mapping[str, Any] | None = None
) -> None:
    """Keep ``parent.<field>`` equal to the number of ``child`` rows pointing at it.

    ``where={"approved": True}`` counts only the children whose fields have those
    values (``None`` matches NULL). A child moving into or out of the condition
    moves the count, and :func:`recount` uses the same condition in SQL.
    """
    declared = Counter(field, tuple(sorted((where or {}).items())), _source())
    _declare("counter", child, fk, declared)


def total(
    child: ModelRef,
    fk: str,
    field: str,
    *,
    of: str,
    where: Mapping[str, Any] | None = None,
) -> None:
    """Keep ``parent.<field>`` equal to the sum of ``child.<of>`` over the children pointing at it.

    NULL amounts add nothing. A child created, deleted, moved to another parent or
    given another amount moves the totals by the difference (``F()`` arithmetic in
    the database, in the same UPDATE as the counters and touches of ``fk``);
    ``where=`` works as for :func:`counter`, and :func:`recount` repairs totals too.
    """
    declared = Total(field, of, tuple(sorted((where or {}).items())), _source())
    _declare("total", child, fk, declared)


def touch(child: ModelRef, fk: str, field: str) -> None:
    """Set ``parent.<field>`` to ``now()`` whenever a ``child`` is created, changed or deleted."""
    _declare("touch", child, fk, Touch(field, _source()))


def relations() -> list[Relation]:
    """Return every registered relation (the declarations database capture compiles)."""
    return list(_live().values())


def counted_models() -> list[type[Model]]:
    """Return the (concrete) parent models that have counters or totals, by label."""
    parents = set()
    for relation in _live().values():
        model = _model_or_none(relation.child)
        if (relation.counters or relation.totals) and model is not None:
            parents.add(relation.plan(model).table)
    return sorted(parents, key=lambda m: m._meta.label)


def kept_fields(parent: type[Model]) -> dict[str, Literal["counter", "total", "touch"]]:
    """Return ``{field: "counter" | "total" | "touch"}`` for the fields of ``parent`` we keep."""
    table = parent._meta.concrete_model
    kept: dict[str, Literal["counter", "total", "touch"]] = {}
    for relation in _live().values():
        child = _model_or_none(relation.child)
        fk = None if child is None else find_field(child, relation.fk)
        if not isinstance(fk, ForeignKey) or fk.related_model._meta.concrete_model is not table:
            continue
        kept.update({c.field: "counter" for c in relation.counters})
        kept.update({t.field: "total" for t in relation.totals})
        kept.update({t.field: "touch" for t in relation.touches})
    return kept


def recount(
    parent: type[Model] | str, using: str | None = None
) -> dict[str, dict[Any, tuple[Any, Any]]]:
    """Recompute every counter and total of ``parent`` from the database; return what was fixed.

    The result maps each counter or total field to ``{parent pk: (stored, correct)}``
    for the rows that were wrong. One SELECT finds the wrong rows of all of them at once and
    one UPDATE (per 500 rows) sets them from the same subqueries, whatever the
    number of rows. The parent's own bulk handlers (cache rules) run for fixed rows.
    """
    model = apps.get_model(parent) if isinstance(parent, str) else parent
    using = using or router.db_for_write(model)
    correct: dict[str, Any] = {}
    for relation in _live().values():
        child = _model_or_none(relation.child)
        if child is None or not (relation.counters or relation.totals):
            continue
        plan = relation.plan(child)
        if plan.table is not model._meta.concrete_model:
            continue
        for name, where, of in plan.recount:
            rows = (
                child._base_manager.filter(
                    Q(**{plan.attnames[0]: OuterRef(plan.target_ref)}), **where
                )
                .order_by()
                .values(plan.attnames[0])
                .annotate(n=Count("pk") if of is None else Sum(of))
                .values("n")
            )
            correct[name] = Coalesce(Subquery(rows), Value(0), output_field=plan.fields[name])
    fixed: dict[str, dict[Any, tuple[Any, Any]]] = {name: {} for name in correct}
    if not correct:
        return fixed
    aliases = {f"_signalhooks_{name}": expression for name, expression in correct.items()}
    manager = model._base_manager.db_manager(using)
    wrong = (
        manager.annotate(**aliases)
        .filter(reduce(or_, (~Q(**{name: F(f"_signalhooks_{name}")}) for name in correct)))
        .values_list("pk", *correct, *aliases)
    )
    pks = []
    for pk, *values in wrong:
        pks.append(pk)
        stored, right = values[: len(correct)], values[len(correct) :]
        for name, old, new in zip(correct, stored, right, strict=True):
            if old != new:
                fixed[name][pk] = (old, new)
    for batch in _batches(pks):
        manager.filter(pk__in=batch).update(**correct)
    if pks and registry.bulk_hooks(model):
        columns = sorted(registry.bulk_fields(model) | {"pk"})
        for batch in _batches(pks):
            rows = manager.filter(pk__in=batch).values(*columns)
            registry.run_bulk(model, using, "update", [(row, row) for row in rows])
    return fixed
