"""``HooksQuerySet``: bulk operations that still apply cache rules and counters.

``update()``, ``bulk_update()`` and ``bulk_create()`` send no model signals. This
queryset reads the affected rows' hook-relevant columns in one extra SELECT and
hands ``(before, after)`` pairs to the bulk handlers of the registry.
``delete()`` needs nothing extra: a model with delete hooks has receivers, so
Django fetches the rows once and sends ``post_delete`` for each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Model, QuerySet

from .registry import registry

M = TypeVar("M", bound=Model)

Row = dict[str, Any]

# Django's bulk_update() calls update(); that inner update must not report rows again.
_in_bulk_update: ContextVar[bool] = ContextVar("signalhooks_in_bulk_update", default=False)


class HooksQuerySet(QuerySet[M]):
    """A ``QuerySet`` whose bulk operations run the model's bulk handlers."""

    def _hook_columns(self) -> list[str]:
        return sorted(registry.bulk_fields(self.model) | {"pk"})

    def _rows(self, pks: Iterable[Any], columns: Sequence[str]) -> dict[Any, Row]:
        rows = self.model._base_manager.db_manager(self.db).filter(pk__in=list(pks))
        return {row["pk"]: row for row in rows.values(*columns)}

    def update(self, **kwargs: Any) -> int:
        if _in_bulk_update.get() or not registry.bulk_hooks(self.model):
            return super().update(**kwargs)
        columns = self._hook_columns()
        attnames = _attnames(self.model, kwargs)
        with transaction.atomic(using=self.db, savepoint=False):
            before = list(self.values(*columns))
            count = super().update(**kwargs)
            if any(hasattr(value, "resolve_expression") for value in kwargs.values()):
                # F() and other expressions: only the database knows the new values.
                after = self._rows([row["pk"] for row in before], columns)
                pairs = [(row, after.get(row["pk"], row)) for row in before]
            else:
                new = {attnames[k]: _raw(v) for k, v in kwargs.items()}
                pairs = [
                    (row, {**row, **{a: v for a, v in new.items() if a in row}}) for row in before
                ]
            registry.run_bulk(self.model, self.db, "update", pairs)
        return count

    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_update(
        self, objs: Iterable[M], fields: Iterable[str], batch_size: int | None = None
    ) -> int:
        objs = list(objs)
        fields = list(fields)
        if not registry.bulk_hooks(self.model) or not objs:
            return super().bulk_update(objs, fields, batch_size=batch_size)
        columns = self._hook_columns()
        with transaction.atomic(using=self.db, savepoint=False):
            before = self._rows([obj.pk for obj in objs], columns)
            token = _in_bulk_update.set(True)
            try:
                count = super().bulk_update(objs, fields, batch_size=batch_size)
            finally:
                _in_bulk_update.reset(token)
            changed = set(_attnames(self.model, fields).values())
            pairs = []
            for obj in objs:
                old = before.get(obj.pk)
                if old is None:
                    continue
                new = {
                    c: (getattr(obj, c) if c in changed else old[c]) for c in columns if c != "pk"
                }
                pairs.append((old, {**new, "pk": obj.pk}))
            registry.run_bulk(self.model, self.db, "update", pairs)
        return count

    bulk_update.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(self, objs: Iterable[M], *args: Any, **kwargs: Any) -> list[M]:
        created = super().bulk_create(objs, *args, **kwargs)
        if registry.bulk_hooks(self.model) and created:
            columns = self._hook_columns()
            rows: list[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]] = [
                (None, {c: (obj.pk if c == "pk" else getattr(obj, c)) for c in columns})
                for obj in created
            ]
            registry.run_bulk(self.model, self.db, "create", rows)
        return created

    bulk_create.alters_data = True  # type: ignore[attr-defined]


def _raw(value: Any) -> Any:
    # update(author=<Author>) stores the id; rows hold ids.
    return value.pk if isinstance(value, Model) else value


def _attnames(model: type[Model], kwargs: Iterable[str]) -> dict[str, str]:
    """Map the names ``update()`` got (``author`` or ``author_id``) to attnames."""
    result = {}
    for name in kwargs:
        result[name] = getattr(model._meta.get_field(name), "attname", name)
    return result
