"""``HooksQuerySet``: bulk operations that still reach the bulk handlers of the registry.

``update()``, ``bulk_update()`` and ``bulk_create()`` send no model signals. This
queryset reads the columns the model's bulk handlers need (``registry.bulk_fields``)
for the affected rows in one extra SELECT, does the operation, and hands
``(before, after)`` rows to ``registry.run_bulk`` — all in one transaction. It knows
nothing of what the handlers do (cache rules, counters, ...). A model without bulk
handlers gets Django's plain behaviour and not one query more.

``delete()`` is Django's own: a model with delete hooks has ``pre_delete`` /
``post_delete`` receivers, so Django loads the rows (that one SELECT) and signals
each of them, and every feature that cares about deletes handles them there — for
``instance.delete()``, ``QuerySet.delete()`` of any manager, and cascades alike.
Handing the same rows to ``run_bulk`` too would count them twice.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model, Q, QuerySet

from .registry import registry

M = TypeVar("M", bound=Model)

Row = dict[str, Any]
Pair = tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]

# Django's bulk_update() calls update() on this queryset class; that inner update
# must not read and report the rows a second time.
_in_bulk_update: ContextVar[bool] = ContextVar("signalhooks_in_bulk_update", default=False)


class HooksQuerySet(QuerySet[M]):
    """A ``QuerySet`` whose bulk operations run the model's bulk handlers.

    Use it as the model's manager: ``objects = HooksQuerySet.as_manager()``.
    """

    # -- reading rows --------------------------------------------------------------------
    def _columns(self) -> list[str] | None:
        """Return the columns the bulk handlers need, or None when there are none."""
        if not registry.bulk_hooks(self.model):
            return None
        return sorted(registry.bulk_fields(self.model) | {"pk"})

    def _base(self, lock: bool = False) -> QuerySet[M]:
        queryset = self.model._base_manager.db_manager(self.db).all()
        if lock:
            # Lock the rows until the operation is done, so a concurrent change between
            # our SELECT and the write cannot slip past the handlers. FOR NO KEY UPDATE
            # where the database has it, the lock an UPDATE itself takes (no blocked
            # foreign-key checks). No-op on databases without SELECT ... FOR UPDATE.
            features = connections[self.db].features
            queryset = queryset.select_for_update(no_key=features.has_select_for_no_key_update)
        return queryset

    def _by_pk(
        self, pks: Sequence[Any], columns: Sequence[str], lock: bool = False
    ) -> dict[Any, Row]:
        """Return ``{pk: row}`` for ``pks``, in as few SELECTs as the database allows."""
        rows: dict[Any, Row] = {}
        for batch in _batches(connections[self.db], pks):
            for row in self._base(lock).filter(pk__in=batch).values(*columns):
                rows[row["pk"]] = row
        return rows

    # -- update ----------------------------------------------------------------------------
    def update(self, **kwargs: Any) -> int:
        columns = None if _in_bulk_update.get() else self._columns()
        if columns is None:
            return super().update(**kwargs)
        if self.query.is_sliced:
            raise TypeError("Cannot update a query once a slice has been taken.")
        if columns == ["pk"]:
            # The handlers read no column (say a tags-only rule): no SELECT, and one
            # row-less change if anything was updated.
            count = super().update(**kwargs)
            if count:
                registry.run_bulk(self.model, self.db, "update", [({"pk": None}, {"pk": None})])
            return count
        attnames = {name: _attname(self.model, name) for name in kwargs}
        with transaction.atomic(using=self.db, savepoint=False):
            # One SELECT: the rows this update will touch, locked, by a subquery so
            # that joins in the filter lock nothing but these rows.
            before = list(self._base(lock=True).filter(pk__in=self.values("pk")).values(*columns))
            count = super().update(**kwargs)
            computed = [
                name
                for name, value in kwargs.items()
                if attnames[name] in columns and hasattr(value, "resolve_expression")
            ]
            if computed:
                # F() and other expressions: only the database knows the new values.
                after = self._by_pk([row["pk"] for row in before], columns)
                pairs: list[Pair] = [(row, after.get(row["pk"], row)) for row in before]
            else:
                new = {
                    attnames[name]: _raw(value)
                    for name, value in kwargs.items()
                    if attnames[name] in columns
                }
                pairs = [(row, {**row, **new}) for row in before]
            registry.run_bulk(self.model, self.db, "update", pairs)
        return count

    update.alters_data = True  # type: ignore[attr-defined]

    # -- bulk_update -----------------------------------------------------------------------
    def bulk_update(
        self, objs: Iterable[M], fields: Iterable[str], batch_size: int | None = None
    ) -> int:
        objs = list(objs)
        fields = list(fields)
        columns = self._columns()
        if columns is None or not objs:
            return super().bulk_update(objs, fields, batch_size=batch_size)
        changed = {_attname(self.model, name) for name in fields} & set(columns)
        with transaction.atomic(using=self.db, savepoint=False):
            pks = [obj.pk for obj in objs]
            before = self._by_pk(pks, columns, lock=True)
            token = _in_bulk_update.set(True)
            try:
                count = super().bulk_update(objs, fields, batch_size=batch_size)
            finally:
                _in_bulk_update.reset(token)
            if any(hasattr(getattr(obj, a), "resolve_expression") for obj in objs for a in changed):
                after = self._by_pk(pks, columns)  # F() values: read what was written
            else:
                after = {
                    obj.pk: {**row, **{a: getattr(obj, a) for a in changed}}
                    for obj in objs
                    if (row := before.get(obj.pk)) is not None
                }
            pairs: list[Pair] = [(row, after[pk]) for pk, row in before.items() if pk in after]
            registry.run_bulk(self.model, self.db, "update", pairs)
        return count

    bulk_update.alters_data = True  # type: ignore[attr-defined]

    # -- bulk_create -----------------------------------------------------------------------
    def bulk_create(
        self,
        objs: Iterable[M],
        batch_size: int | None = None,
        ignore_conflicts: bool = False,
        update_conflicts: bool = False,
        update_fields: Collection[str] | None = None,
        unique_fields: Collection[str] | None = None,
    ) -> list[M]:
        options: dict[str, Any] = {
            "batch_size": batch_size,
            "ignore_conflicts": ignore_conflicts,
            "update_conflicts": update_conflicts,
            "update_fields": update_fields,
            "unique_fields": unique_fields,
        }
        columns = self._columns()
        if columns is None:
            return super().bulk_create(objs, **options)
        objs = list(objs)
        with transaction.atomic(using=self.db, savepoint=False):
            if update_conflicts and unique_fields:
                # Some objects may update existing rows: read those before and after.
                unique = [_attname(self.model, name) for name in unique_fields]
                before = self._by_unique(objs, unique, columns, lock=True)
                created = super().bulk_create(objs, **options)
                after = self._by_unique(objs, unique, columns)
                new: list[Pair] = [(None, row) for key, row in after.items() if key not in before]
                updated: list[Pair] = [(row, after[key]) for key, row in before.items()]
                registry.run_bulk(self.model, self.db, "update", updated)
            else:
                created = super().bulk_create(objs, **options)
                # ignore_conflicts: the database does not say which objects it skipped;
                # all are reported (their pk is None where it returned none).
                new = [(None, _row(obj, columns)) for obj in created]
            registry.run_bulk(self.model, self.db, "create", new)
        return created

    bulk_create.alters_data = True  # type: ignore[attr-defined]

    def _by_unique(
        self, objs: Sequence[M], unique: Sequence[str], columns: Sequence[str], lock: bool = False
    ) -> dict[tuple[Any, ...], Row]:
        """Return ``{unique values: row}`` of the rows that match ``objs`` on ``unique``."""
        wanted = list(dict.fromkeys(tuple(getattr(obj, a) for a in unique) for obj in objs))
        selected = sorted({*columns, *unique})
        rows: dict[tuple[Any, ...], Row] = {}
        connection = connections[self.db]
        for batch in _batches(connection, wanted, per_item=len(unique)):
            match = functools.reduce(
                operator.or_, (Q(**dict(zip(unique, key, strict=True))) for key in batch)
            )
            for row in self._base(lock).filter(match).values(*selected):
                rows[tuple(row[a] for a in unique)] = {c: row[c] for c in columns}
        return rows


def _batches(
    connection: BaseDatabaseWrapper, items: Sequence[Any], per_item: int = 1
) -> Iterator[Sequence[Any]]:
    """Split ``items`` so no query has more parameters than the database takes."""
    limit = connection.features.max_query_params
    size = max(limit // per_item, 1) if limit else max(len(items), 1)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _row(obj: Model, columns: Sequence[str]) -> Row:
    return {c: obj.pk if c == "pk" else getattr(obj, c) for c in columns}


def _attname(model: type[Model], name: str) -> str:
    """Map a name ``update()`` accepts (``author``, ``author_id``, ``pk``) to the attname."""
    if name == "pk":
        pk = model._meta.pk
        assert pk is not None
        return pk.attname
    return str(getattr(model._meta.get_field(name), "attname", name))


def _raw(value: Any) -> Any:
    """Return ``value`` as a row holds it: an object passed for a foreign key is its pk."""
    return value.pk if isinstance(value, Model) else value
