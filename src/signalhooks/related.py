"""Related records: denormalised counters and "touch the parent" timestamps.

Every ``counter()`` and ``touch()`` on one foreign key of one child model belongs to
one :class:`Relation`, which is registered as hooks in the registry: ``post_save``
(with the bulk handler) and ``post_delete`` do the work; ``pre_save`` and
``pre_delete`` read old values that a deferred-loading instance never held. A save that moves the
counts and the timestamp of a parent issues ONE ``UPDATE`` of that parent, written
as ``col = col + %s`` in the database (what ``F("col") + 1`` compiles to), so
concurrent saves lose no increment: never read-modify-write.

The statement is built once per shape with the connection's quoting and run on
the cursor: the ORM's ``update()`` spends more time compiling than a small
``INSERT`` takes, and this statement runs on every save of a child.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any, Literal

from django.apps import apps
from django.core.checks import CheckMessage, Error
from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    DEFERRED,
    Count,
    F,
    Field,
    ForeignKey,
    IntegerField,
    Model,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.expressions import Combinable
from django.db.models.fields import DateField
from django.db.models.functions import Coalesce, Greatest
from django.db.models.utils import make_model_tuple
from django.utils import timezone

from .hooks import _senders
from .observe import counters_moved, observers
from .registry import BulkChange, Event, Hook, ModelRef, registry
from .tracking import STATE, find_field

#: The values a relation reads from one child row: the foreign key first, then the
#: fields its ``where=`` conditions name.
Values = tuple[Any, ...]
#: Parents per ``UPDATE ... WHERE key IN (...)``: well under every database's limit.
BATCH = 500
#: Counters and touches run before user hooks of the same event (lower runs first),
#: so a ``post_save`` hook on the child already sees the parent's new values.
PRIORITY = -1000


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
        # The child columns: the foreign key first, then the where= fields.
        names, attnames = [fk.name], [fk.attname]
        for counter in relation.counters:
            for key, _ in counter.where:
                field = find_field(child, key)
                assert field is not None
                if field.name not in names:
                    names.append(field.name)
                    attnames.append(field.attname)
        self.names = tuple(names)
        self.attnames = tuple(attnames)
        self.counters = tuple(
            (counter.field, self._conditions(child, counter)) for counter in relation.counters
        )
        #: ``(field name, where kwargs)`` for recount(): the same conditions in SQL.
        self.recount = tuple((c.field, dict(c.where)) for c in relation.counters)
        fields = {name: _field(table, name) for name, _ in self.counters}
        self.nullable = frozenset(name for name, field in fields.items() if field.null)
        self.touches = tuple(_field(table, t.field) for t in relation.touches)
        written = [*fields.values(), *self.touches, self.target]
        # A field of an ancestor table (multi-table inheritance) needs the ORM's update.
        self.local = all(f.model._meta.concrete_model is table for f in written)
        #: The parent attributes to forget on a parent held in memory.
        self.attributes = tuple(f.attname for f in [*fields.values(), *self.touches])
        self._sql: dict[tuple[str, tuple[tuple[str, bool], ...], int], str] = {}

    def _conditions(self, child: type[Model], counter: Counter) -> tuple[tuple[int, Any], ...]:
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
            return tuple(d.get(a, DEFERRED) for a in self.attnames)
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
        totals: dict[Any, dict[str, int]] = {}
        for before, after in rows:
            for values, sign in ((before, -1), (after, 1)):
                if values is None or values[0] is None:
                    continue
                fields = totals.setdefault(values[0], {})
                for name, conditions in self.counters:
                    if all(values[i] == value for i, value in conditions):
                        fields[name] = fields.get(name, 0) + sign
        groups: defaultdict[Any, list[Any]] = defaultdict(list)
        for key, fields in totals.items():
            change = tuple(sorted((name, delta) for name, delta in fields.items() if delta))
            if change or self.touches:
                groups[change].append(key)
        return groups

    def update(self, using: str, groups: Mapping[Any, list[Any]]) -> None:
        """Write each group's change with one UPDATE (per ``BATCH`` parents)."""
        if observers:
            counters_moved(self.parent, groups)
        now = timezone.now()
        for change, keys in groups.items():
            for batch in _batches(keys):
                if self.local:
                    self._execute(using, change, batch, now)
                else:
                    self._orm_update(using, change, batch, now)
        if registry.bulk_hooks(self.parent):
            # The parent's own bulk handlers (its cache rules): its rows changed.
            keys = [key for keys in groups.values() for key in keys]
            self.run_parent_bulk(using, keys)

    def run_parent_bulk(self, using: str, keys: Sequence[Any]) -> None:
        columns = sorted(registry.bulk_fields(self.parent) | {"pk"})
        manager = self.parent._base_manager.db_manager(using)
        for batch in _batches(keys):
            rows = manager.filter(**{f"{self.target_ref}__in": batch}).values(*columns)
            registry.run_bulk(self.parent, using, "update", [(row, row) for row in rows])

    def _execute(
        self, using: str, change: tuple[tuple[str, int], ...], keys: Sequence[Any], now: Any
    ) -> None:
        connection = connections[using]
        shape = (using, tuple((name, delta < 0) for name, delta in change), len(keys))
        sql = self._sql.get(shape)
        if sql is None:
            sql = self._sql[shape] = self._statement(connection, shape)
        params: list[Any] = []
        for _, delta in change:
            params.extend((delta, delta) if delta < 0 else (delta,))
        params.extend(t.get_db_prep_save(now, connection) for t in self.touches)
        params.extend(self.target.get_db_prep_value(k, connection) for k in keys)
        with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
            cursor.execute(sql, params)

    def _statement(
        self,
        connection: BaseDatabaseWrapper,
        shape: tuple[str, tuple[tuple[str, bool], ...], int],
    ) -> str:
        quote = connection.ops.quote_name
        _, fields, count = shape
        sets = []
        for name, negative in fields:
            column = quote(_column(_field(self.table, name)))
            value = f"COALESCE({column}, 0)" if name in self.nullable else column
            # A count never goes below zero: a counter that drifted (rows written
            # before it existed) must not make deletes fail on a positive-only column.
            sets.append(
                f"{column} = CASE WHEN {value} + %s < 0 THEN 0 ELSE {value} + %s END"
                if negative
                else f"{column} = {value} + %s"
            )
        sets.extend(f"{quote(_column(t))} = %s" for t in self.touches)
        target = quote(_column(self.target))
        where = f"{target} = %s" if count == 1 else f"{target} IN ({', '.join(['%s'] * count)})"
        return f"UPDATE {quote(self.table._meta.db_table)} SET {', '.join(sets)} WHERE {where}"

    def _orm_update(
        self, using: str, change: tuple[tuple[str, int], ...], keys: Sequence[Any], now: Any
    ) -> None:
        updates: dict[str, Any] = {}
        for name, delta in change:
            value: Combinable = Coalesce(F(name), 0) if name in self.nullable else F(name)
            updates[name] = Greatest(value + delta, 0) if delta < 0 else value + delta
        updates.update({t.name: now for t in self.touches})
        manager = self.parent._base_manager.db_manager(using)
        manager.filter(**{f"{self.target_ref}__in": keys}).update(**updates)

    def forget(self, instance: Model) -> None:
        """Drop the kept fields from the parent ``instance`` holds, so they reload."""
        parent = instance._state.fields_cache.get(self.fk_name)
        if parent is not None:
            d = parent.__dict__
            for attname in self.attributes:
                d.pop(attname, None)


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
    ) -> None:
        self.child = child
        #: Where the relation was first declared (each counter keeps its own source).
        self.source = source
        self.fk = fk
        self.counters = counters
        self.touches = touches
        self.hooks: tuple[Hook, ...] = ()
        self._plans: dict[type[Model], Plan] = {}
        # Keys in a child's __dict__: its old values read in pre_save / pre_delete.
        self._old = f"_signalhooks_related_old_{id(self)}"
        self._stash = f"_signalhooks_related_deleted_{id(self)}"

    @property
    def key(self) -> tuple[tuple[str, str], str]:
        return (make_model_tuple(self.child), self.fk)

    @property
    def kind(self) -> Literal["counter", "touch"]:
        return "counter" if self.counters else "touch"

    @property
    def label(self) -> str:
        parts = []
        if self.counters:
            parts.append("counter " + ", ".join(c.describe() for c in self.counters))
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
        call = f"{self.kind}({label}, {self.fk!r}, ...)"
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
        for touch in self.touches:
            field = find_field(parent, touch.field)
            if not isinstance(field, DateField):
                problems.append(
                    Problem(
                        "E022",
                        f"touch({label}, {self.fk!r}, {touch.field!r}): "
                        f"{_describe(parent, touch.field, field, 'a DateTimeField or DateField')}.",
                        "Touch a date/time field, e.g. add "
                        f"{touch.field if field is None else 'updated_at'} = "
                        f"models.DateTimeField(null=True) to {parent.__name__}.",
                    )
                )
        problems.extend(self._duplicates(model, parent, others))
        return problems

    def _counter_problems(
        self, model: type[Model], parent: type[Model], counter: Counter
    ) -> Iterator[Problem]:
        call = f"counter({model._meta.label}, {self.fk!r}, {counter.field!r})"
        field = find_field(parent, counter.field)
        if not isinstance(field, IntegerField):
            yield Problem(
                "E021",
                f"{call}: {_describe(parent, counter.field, field, 'an integer field')}.",
                "Count into an integer field, e.g. add "
                f"{counter.field if field is None else 'comment_count'} = "
                f"models.PositiveIntegerField(default=0) to {parent.__name__}.",
            )
        for key, _ in counter.where:
            if find_field(model, key) is None:
                yield Problem(
                    "E023",
                    f"{call}: where= names {key!r}, which is not a field of {model._meta.label}.",
                    "where= takes exact field values, e.g. where={'approved': True}; fields: "
                    + ", ".join(f.name for f in model._meta.concrete_fields)
                    + ".",
                )

    def _duplicates(
        self, model: type[Model], parent: type[Model], others: Iterable[Relation]
    ) -> Iterator[Problem]:
        """A parent field counted twice would move twice and could not be recounted."""
        table = parent._meta.concrete_model
        kept: dict[str, tuple[Relation, Counter]] = {}
        for other in others:
            other_model = _model_or_none(other.child)
            if other.key == self.key or other_model is None:
                continue
            other_fk = find_field(other_model, other.fk)
            if isinstance(other_fk, ForeignKey) and (
                other_fk.related_model._meta.concrete_model is table
            ):
                kept.update({c.field: (other, c) for c in other.counters})
        for counter in self.counters:
            kept_by, first = kept.setdefault(counter.field, (self, counter))
            if first is not counter:
                yield Problem(
                    "E025",
                    f"counter({model._meta.label}, {self.fk!r}, {counter.field!r}): "
                    f"{parent._meta.label}.{counter.field} is already kept by "
                    f"counter({kept_by.child_label}, {kept_by.fk!r}, {first.field!r}"
                    f"{_where(first)}) at {first.source}.",
                    "Count each relation (and each where=) into a field of its own.",
                )

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
            "track": frozenset({self.fk, *(k for c in self.counters for k, _ in c.where)}),
            "details": {
                "counters": [c.describe() for c in self.counters],
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

        if not apps.models_ready:
            apps.lazy_model_operation(resolved, make_model_tuple(self.child))
        elif (model := _model_or_none(self.child)) is not None:
            resolved(model)
        for hook in self.hooks:
            registry.add(hook)


def _field(model: type[Model], name: str) -> Field[Any, Any]:
    field = find_field(model, name)
    assert field is not None
    return field


def _column(field: Field[Any, Any]) -> str:
    assert field.column is not None  # concrete fields have columns
    return field.column


def _describe(model: type[Model], name: str, field: Field[Any, Any] | None, wanted: str) -> str:
    if field is None:
        return f"{model._meta.label} has no field {name!r}"
    return f"{model._meta.label}.{name} is a {type(field).__name__}, not {wanted}"


def _where(counter: Counter) -> str:
    return f", where={dict(counter.where)!r}" if counter.where else ""


def _batches(keys: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(keys), BATCH):
        yield keys[start : start + BATCH]


def _loaded(instance: Model, attname: str) -> Any:
    """Return the value of ``attname`` when ``instance`` was loaded or last saved."""
    tracker = registry.tracker(type(instance))
    assert tracker is not None  # relations track their columns
    state: Any = getattr(instance._state, STATE, DEFERRED)
    if len(tracker.attnames) == 1 or state is DEFERRED:  # one field is stored bare
        return state
    return state[tracker.attnames.index(attname)]


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


def _declare(decorator: str, child: ModelRef, fk: str, declared: Counter | Touch) -> None:
    (child,) = _senders(decorator, (child,))
    if not isinstance(child, str) and (field := find_field(child, fk)) is not None:
        fk = field.name  # "post_id" and "post" are one relation
    current = _live().get((make_model_tuple(child), fk))
    counters = current.counters if current else ()
    touches = current.touches if current else ()
    if isinstance(declared, Counter):
        if any(c.key == declared.key for c in counters):
            return  # declared again (a module imported twice): nothing changes
        counters = (*counters, declared)
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
    )
    model = _model_or_none(relation.child) if apps.models_ready else None
    if model is not None:
        problems = relation.problems(model, others=_live().values())
        if problems:
            raise ValueError(str(problems[0]))
    # Declared before the app registry is ready: the system checks report mistakes
    # (signalhooks.E020-E025), and the first save raises them.
    if current is not None:
        for hook in current.hooks:
            registry.remove(hook)
    relation.register()


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


def touch(child: ModelRef, fk: str, field: str) -> None:
    """Set ``parent.<field>`` to ``now()`` whenever a ``child`` is created, changed or deleted."""
    _declare("touch", child, fk, Touch(field, _source()))


def counted_models() -> list[type[Model]]:
    """Return the (concrete) parent models that have counters, by label."""
    parents = set()
    for relation in _live().values():
        model = _model_or_none(relation.child)
        if relation.counters and model is not None:
            parents.add(relation.plan(model).table)
    return sorted(parents, key=lambda m: m._meta.label)


def recount(
    parent: type[Model] | str, using: str | None = None
) -> dict[str, dict[Any, tuple[int | None, int]]]:
    """Recompute every counter of ``parent`` from the database; return what was fixed.

    The result maps each counter field to ``{parent pk: (stored, correct)}`` for the
    rows that were wrong. One SELECT finds the wrong rows of all counters at once and
    one UPDATE (per 500 rows) sets them from the same subqueries, whatever the
    number of rows. The parent's own bulk handlers (cache rules) run for fixed rows.
    """
    model = apps.get_model(parent) if isinstance(parent, str) else parent
    using = using or router.db_for_write(model)
    correct: dict[str, Any] = {}
    for relation in _live().values():
        child = _model_or_none(relation.child)
        if child is None or not relation.counters:
            continue
        plan = relation.plan(child)
        if plan.table is not model._meta.concrete_model:
            continue
        for name, where in plan.recount:
            rows = (
                child._base_manager.filter(
                    Q(**{plan.attnames[0]: OuterRef(plan.target_ref)}), **where
                )
                .order_by()
                .values(plan.attnames[0])
                .annotate(n=Count("pk"))
                .values("n")
            )
            correct[name] = Coalesce(Subquery(rows), Value(0))
    fixed: dict[str, dict[Any, tuple[int | None, int]]] = {name: {} for name in correct}
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
