"""Related records: denormalised counters and "touch the parent" timestamps.

``counter()`` and ``touch()`` on the same (child model, foreign key) share one
:class:`Relation`, so a save that moves a count and a timestamp of a parent
issues one ``UPDATE`` of that parent, with ``F()`` expressions — never a
read-modify-write, so concurrent saves lose no increment.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from django.apps import apps
from django.core.checks import CheckMessage, Error
from django.db.models import (
    DEFERRED,
    Count,
    F,
    ForeignKey,
    IntegerField,
    Model,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.fields import DateField
from django.db.models.functions import Coalesce
from django.utils import timezone

from .hooks import _senders
from .registry import BulkChange, Event, Hook, ModelRef, registry
from .tracking import find_field

Row = Mapping[str, Any]


class Counter:
    """``parent.<field>`` = number of children pointing at it (matching ``where``)."""

    def __init__(self, field: str, where: Mapping[str, Any], source: str) -> None:
        self.field = field
        self.where = dict(where)
        self.source = source

    def matches(self, values: Row) -> bool:
        return all(values[name] == value for name, value in self.where.items())


class Relation:
    """All counters and touches of one foreign key of one child model."""

    def __init__(self, child: ModelRef, fk: str) -> None:
        self.child = child
        self.fk = fk
        self.counters: list[Counter] = []
        self.touches: list[tuple[str, str]] = []  # (parent field, source)
        self.hooks: list[Hook] = []
        self._columns: dict[type[Model], dict[str, str]] = {}

    # -- resolution --------------------------------------------------------------------
    @property
    def model(self) -> type[Model]:
        return apps.get_model(self.child) if isinstance(self.child, str) else self.child

    def foreign_key(self, model: type[Model]) -> ForeignKey[Any, Any] | None:
        field = find_field(model, self.fk)
        return field if isinstance(field, ForeignKey) else None

    def parent(self, model: type[Model]) -> type[Model]:
        field = self.foreign_key(model)
        assert field is not None
        return field.related_model

    def columns(self, model: type[Model]) -> dict[str, str]:
        """Return ``{name: attname}`` of the child fields the relation reads."""
        # Read on every save: worked out once per model (and again after a new counter).
        columns = self._columns.get(model)
        if columns is None:
            names = {self.fk, *(n for c in self.counters for n in c.where)}
            columns = {n: f.attname for n in names if (f := find_field(model, n)) is not None}
            self._columns[model] = columns
        return columns

    # -- the work ------------------------------------------------------------------------
    def _values(self, instance: Model, changes: Mapping[str, Any], old: bool) -> dict[str, Any]:
        d = instance.__dict__
        values = {}
        for name, attname in self.columns(type(instance)).items():
            if old and name in changes and changes[name][0] is not DEFERRED:
                values[name] = changes[name][0]
            else:
                values[name] = d.get(attname)
        return values

    def _deltas(
        self, before: Row | None, after: Row | None
    ) -> tuple[dict[Any, dict[str, int]], set[Any]]:
        """Return ``({parent pk: {field: delta}}, parents to touch)`` for one child row."""
        deltas: dict[Any, dict[str, int]] = defaultdict(dict)
        touched: set[Any] = set()
        for values, sign in ((before, -1), (after, 1)):
            if values is None or values[self.fk] is None:
                continue
            parent = values[self.fk]
            touched.add(parent)
            for counter in self.counters:
                if counter.matches(values):
                    field = deltas[parent]
                    field[counter.field] = field.get(counter.field, 0) + sign
        return deltas, touched

    def apply(
        self, model: type[Model], using: str, rows: Iterable[tuple[Row | None, Row | None]]
    ) -> None:
        """Update the parents of ``rows``: one UPDATE per distinct change, F() only."""
        total: dict[Any, dict[str, int]] = defaultdict(dict)
        touched: set[Any] = set()
        for before, after in rows:
            deltas, parents = self._deltas(before, after)
            touched |= parents
            for parent, fields in deltas.items():
                for field, delta in fields.items():
                    total[parent][field] = total[parent].get(field, 0) + delta
        groups: dict[tuple[tuple[str, int], ...], list[Any]] = defaultdict(list)
        for parent in touched if self.touches else set(total):
            change = tuple(sorted((f, d) for f, d in total.get(parent, {}).items() if d))
            if change or self.touches:
                groups[change].append(parent)
        parent_model = self.parent(model)
        manager = parent_model._base_manager.db_manager(using)
        now = timezone.now()
        for change, pks in groups.items():
            updates: dict[str, Any] = {f: F(f) + d for f, d in change}
            updates.update({field: now for field, _ in self.touches})
            manager.filter(pk__in=sorted(pks, key=str)).update(**updates)
        updated = [p for ps in groups.values() for p in ps]
        if updated and registry.bulk_hooks(parent_model):
            # The parent's own cache rules: its rows changed under them.
            columns = sorted(registry.bulk_fields(parent_model) | {"pk"})
            fresh = manager.filter(pk__in=updated).values(*columns)
            registry.run_bulk(parent_model, using, "update", [(row, row) for row in fresh])

    def _forget_cached_parent(self, instance: Model) -> None:
        # The parent held in memory (comment.post) now has stale counters/timestamps:
        # drop those attributes so the next read loads them, and a later
        # parent.save() does not write the stale values back.
        parent = instance._state.fields_cache.get(self.fk)
        if parent is not None:
            for field in [c.field for c in self.counters] + [f for f, _ in self.touches]:
                parent.__dict__.pop(field, None)

    def on_save(
        self,
        *,
        instance: Model,
        created: bool,
        changes: Mapping[str, Any],
        using: str,
        **kwargs: Any,
    ) -> None:
        before = None if created else self._values(instance, changes, old=True)
        after = self._values(instance, changes, old=False)
        if not self.touches and before == after:
            return  # nothing this relation counts moved
        self.apply(type(instance), using, [(before, after)])
        self._forget_cached_parent(instance)

    def on_delete(
        self, *, instance: Model, changes: Mapping[str, Any], using: str, **kwargs: Any
    ) -> None:
        self.apply(type(instance), using, [(self._values(instance, changes, old=True), None)])
        self._forget_cached_parent(instance)

    def on_bulk(self, change: BulkChange) -> None:
        columns = self.columns(change.model)

        def named(row: Row | None) -> Row | None:
            return None if row is None else {n: row[a] for n, a in columns.items()}

        self.apply(change.model, change.using, [(named(b), named(a)) for b, a in change.rows])

    # -- checks ------------------------------------------------------------------------
    def check(self, model: type[Model]) -> list[CheckMessage]:
        try:
            self.validate(model)
        except ValueError as error:
            return [Error(str(error), obj=model, id="signalhooks.E020")]
        return []

    def validate(self, model: type[Model]) -> None:
        fk = self.foreign_key(model)
        if fk is None:
            keys = [f.name for f in model._meta.concrete_fields if isinstance(f, ForeignKey)]
            raise ValueError(
                f"{model._meta.label} has no foreign key {self.fk!r} for counter()/touch(). "
                f"Name one of its foreign keys: {', '.join(keys) or '(none)'}."
            )
        parent = self.parent(model)
        for counter in self.counters:
            target = find_field(parent, counter.field)
            if not isinstance(target, IntegerField):
                raise ValueError(
                    f"counter({model._meta.label}, {self.fk!r}, {counter.field!r}): "
                    f"{parent._meta.label}.{counter.field} must be an integer field. "
                    f"Add e.g. {counter.field} = models.PositiveIntegerField(default=0)."
                )
            for name in counter.where:
                if find_field(model, name) is None:
                    raise ValueError(
                        f"counter({model._meta.label}, ..., where={{{name!r}: ...}}): "
                        f"{model._meta.label} has no field {name!r}."
                    )
        for field, _ in self.touches:
            if not isinstance(find_field(parent, field), DateField):
                raise ValueError(
                    f"touch({model._meta.label}, {self.fk!r}, {field!r}): "
                    f"{parent._meta.label}.{field} must be a DateTimeField or DateField. "
                    f"Add e.g. {field} = models.DateTimeField(null=True)."
                )


_relations: dict[tuple[ModelRef, str], Relation] = {}


def _relation(child: ModelRef, fk: str, decorator: str) -> Relation:
    (child,) = _senders(decorator, (child,))
    relation = _relations.get((child, fk))
    if relation is None or not set(relation.hooks) <= set(registry.hooks()):
        # New, or its hooks were unregistered (registry.isolated() in tests): start over.
        relation = _relations[(child, fk)] = Relation(child, fk)
    return relation


def _register(relation: Relation, source: str) -> None:
    relation._columns.clear()  # a new counter may read more fields
    if apps.models_ready:
        relation.validate(relation.model)  # else: system check signalhooks.E020
    for hook in relation.hooks:
        registry.remove(hook)
    known = apps.models_ready or not isinstance(relation.child, str)
    fields = relation.columns(relation.model) if known else {}
    counted = ", ".join(
        c.field + (f" where {c.where}" if c.where else "") for c in relation.counters
    )
    touched = ", ".join(f for f, _ in relation.touches)
    label = "; ".join(
        part for part in (counted and f"counter {counted}", touched and f"touch {touched}") if part
    )
    common: dict[str, Any] = {
        "sender": relation.child,
        "kind": "counter" if relation.counters else "touch",
        "label": f"related({relation.fk}: {label})",
        "source": source,
        "track": frozenset(fields),
        "details": {
            "counters": [c.field for c in relation.counters],
            "touches": [f for f, _ in relation.touches],
        },
    }
    relation.hooks = [
        registry.add(
            Hook(
                func=relation.on_save,
                event=Event.POST_SAVE,
                bulk=relation.on_bulk,
                bulk_fields=frozenset(fields.values()),
                check=relation.check,
                **common,
            )
        ),
        registry.add(Hook(func=relation.on_delete, event=Event.POST_DELETE, **common)),
    ]


def counter(
    child: ModelRef, fk: str, field: str, *, where: Mapping[str, Any] | None = None
) -> None:
    """Keep ``parent.<field>`` equal to the number of ``child`` rows pointing at it.

    ``where={"approved": True}`` counts only the children with those field values;
    moving into or out of the condition moves the count, and :func:`recount` uses
    the same condition in SQL.
    """
    frame = sys._getframe(1)
    source = f"{frame.f_code.co_filename}:{frame.f_lineno}"
    relation = _relation(child, fk, "counter")
    relation.counters.append(Counter(field, where or {}, source))
    try:
        _register(relation, source)
    except ValueError:
        relation.counters.pop()
        raise


def touch(child: ModelRef, fk: str, field: str) -> None:
    """Set ``parent.<field>`` to ``now()`` whenever a ``child`` is created, changed or deleted."""
    frame = sys._getframe(1)
    relation = _relation(child, fk, "touch")
    source = f"{frame.f_code.co_filename}:{frame.f_lineno}"
    relation.touches.append((field, source))
    try:
        _register(relation, source)
    except ValueError:
        relation.touches.pop()
        raise


def _live_relations() -> list[Relation]:
    hooks = set(registry.hooks())
    return [r for r in _relations.values() if r.hooks and set(r.hooks) <= hooks]


def counted_models() -> list[type[Model]]:
    """Return the parent models that have counters, by label."""
    parents = {r.parent(r.model) for r in _live_relations() if r.counters}
    return sorted(parents, key=lambda m: m._meta.label)


def recount(
    parent: type[Model] | str, using: str = "default"
) -> dict[str, dict[Any, tuple[int, int]]]:
    """Recompute every counter of ``parent`` from the database; return what was fixed.

    The result maps ``field`` to ``{parent pk: (stored, correct)}`` for the rows
    that were wrong. Two set-based queries per counter, whatever the row count.
    """
    model = apps.get_model(parent) if isinstance(parent, str) else parent
    fixed: dict[str, dict[Any, tuple[int, int]]] = {}
    for relation in _live_relations():
        child = relation.model
        if relation.parent(child) is not model:
            continue
        fk = relation.foreign_key(child)
        assert fk is not None
        for counter in relation.counters:
            correct = Coalesce(
                Subquery(
                    child._base_manager.filter(Q(**{fk.name: OuterRef("pk")}), **counter.where)
                    .order_by()
                    .values(fk.attname)
                    .annotate(n=Count("pk"))
                    .values("n")
                ),
                Value(0),
            )
            manager = model._base_manager.db_manager(using)
            wrong = {
                pk: (stored, right)
                for pk, stored, right in manager.annotate(_correct=correct)
                .exclude(**{counter.field: F("_correct")})
                .values_list("pk", counter.field, "_correct")
            }
            if wrong:
                manager.filter(pk__in=list(wrong)).update(**{counter.field: correct})
            fixed.setdefault(counter.field, {}).update(wrong)
    return fixed
