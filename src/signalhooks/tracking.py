"""Cheap change tracking: remember the loaded value of the fields someone asked for.

A model that some hook, rule or ``track()`` call needs gets a ``post_init``
receiver that stores the tracked values in one tuple in the instance's
``__dict__``. Comparing that tuple with the current values is one C-level
comparison when nothing changed, which is the common case on the save path.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.db.models import DEFERRED, Field, JSONField, Model

#: Attribute of ``instance._state`` (Django's ModelState) holding the loaded values:
#: kept off the instance itself so ``vars(instance)`` and serialisers never see it.
STATE = "signalhooks"
#: What ``changes`` shows for a password hash, old and new.
REDACTED = "<redacted>"
#: ``changes`` when nothing changed; read-only so a hook cannot poison it.
NO_CHANGES: Mapping[str, tuple[Any, Any]] = MappingProxyType({})

Changes = dict[str, tuple[Any, Any]]


def is_mutable(field: Field[Any, Any]) -> bool:
    """Return whether values of ``field`` can change in place (JSON, arrays, hstore)."""
    return isinstance(field, JSONField) or field.get_internal_type() in {
        "ArrayField",
        "HStoreField",
    }


def find_field(model: type[Model], name: str) -> Field[Any, Any] | None:
    """Return the concrete field of ``model`` called ``name`` (name or attname)."""
    for field in model._meta.concrete_fields:
        if name in (field.name, field.attname):
            return field
    return None


def _user_model_label() -> str:
    return str(settings.AUTH_USER_MODEL).lower()


class Tracker:
    """The tracked fields of one concrete model and how to compare them."""

    __slots__ = ("attnames", "fields", "model", "names", "_getter", "_mutable", "_secret")

    def __init__(self, model: type[Model], fields: Iterable[Field[Any, Any]]) -> None:
        ordered = sorted(set(fields), key=lambda f: f.creation_counter)
        self.model = model
        self.fields = tuple(ordered)
        self.names = tuple(f.name for f in ordered)
        self.attnames = tuple(f.attname for f in ordered)
        # itemgetter of several names returns a tuple, of one name the bare value;
        # both compare with ``==`` in C, which is all the hot path needs.
        self._getter: Callable[[dict[str, Any]], Any] = itemgetter(*self.attnames)
        self._mutable = any(is_mutable(f) for f in ordered)
        is_user = model._meta.label_lower == _user_model_label()
        self._secret = frozenset(f.name for f in ordered if is_user and f.name == "password")

    # -- state ---------------------------------------------------------------------
    def _current(self, d: dict[str, Any]) -> Any:
        """Return the tracked values as stored: a tuple, or the bare value of one field."""
        try:
            return self._getter(d)
        except KeyError:  # a deferred field that was never loaded
            values = tuple(d.get(a, DEFERRED) for a in self.attnames)
            return values if len(values) > 1 else values[0]

    def _keep(self, value: Any) -> Any:
        # A dict or list stored in a JSONField changes in place: keep a copy.
        return copy.deepcopy(value) if self._mutable else value

    def _as_tuple(self, value: Any) -> tuple[Any, ...]:
        return value if len(self.attnames) > 1 else (value,)

    def _old(self, old: Any) -> tuple[Any, ...]:
        if old is _MISSING:
            # Built without __init__ (or before tracking started): nothing is known.
            return (DEFERRED,) * len(self.attnames)
        return self._as_tuple(old)

    def on_post_init(self, *, instance: Model, **kwargs: Any) -> None:
        # Runs for every instance built, 10,000 times for 10,000 rows: keep it flat.
        d = instance.__dict__
        try:
            value = self._getter(d)
        except KeyError:
            value = self._current(d)
        # An attribute, not ``__dict__[...]``: reading an object's __dict__ makes
        # CPython build a real dict for it, which costs more than the value.
        setattr(instance._state, STATE, copy.deepcopy(value) if self._mutable else value)

    # -- comparing -----------------------------------------------------------------
    def changes(self, instance: Model, *, adding: bool = False) -> Mapping[str, tuple[Any, Any]]:
        """Return ``{field name: (old, new)}`` for the tracked fields that differ."""
        new = self._current(instance.__dict__)
        if adding:
            return self._build(self._nothing, self._as_tuple(new), everything=True)
        old = getattr(instance._state, STATE, _MISSING)
        if old == new:
            return NO_CHANGES
        return self._build(self._old(old), self._as_tuple(new))

    @property
    def _nothing(self) -> tuple[None, ...]:
        return (None,) * len(self.attnames)

    def _build(
        self,
        old: tuple[Any, ...],
        new: tuple[Any, ...],
        everything: bool = False,
        only: frozenset[str] | None = None,
    ) -> Changes:
        result: Changes = {}
        for name, attname, before, after in zip(self.names, self.attnames, old, new, strict=True):
            if only is not None and name not in only and attname not in only:
                continue
            if everything or (before is not after and before != after):
                result[name] = (REDACTED, REDACTED) if name in self._secret else (before, after)
        return result

    def saved(
        self, instance: Model, created: bool, update_fields: frozenset[str] | None
    ) -> Mapping[str, tuple[Any, Any]]:
        """Return the changes a save wrote and make the saved values the new baseline."""
        d = instance.__dict__
        state = instance._state
        try:
            new = self._getter(d)
        except KeyError:
            new = self._current(d)
        old = getattr(state, STATE, _MISSING)
        if update_fields is None and not created:
            # The hot path: an update save. Equal tuples mean nothing changed and
            # the baseline is already right.
            if old == new:
                return NO_CHANGES
            setattr(state, STATE, self._keep(new))
            return self._build(self._old(old), self._as_tuple(new))
        if update_fields is None:
            setattr(state, STATE, self._keep(new))
            return self._build(self._nothing, self._as_tuple(new), everything=True)
        # save(update_fields=...): only the listed fields (and any a pre_save hook
        # assigned, which signalhooks wrote too) were written.
        written = update_fields | d.pop(EXTRA_FIELDS, frozenset())
        old_values = self._old(old)
        new_values = self._as_tuple(new)
        baseline = tuple(
            after if name in written or attname in written else before
            for name, attname, before, after in zip(
                self.names, self.attnames, old_values, new_values, strict=True
            )
        )
        setattr(state, STATE, self._keep(baseline if len(baseline) > 1 else baseline[0]))
        return self._build(old_values, new_values, everything=created, only=written)


#: Key in ``instance.__dict__`` of fields a pre_save hook assigned outside update_fields.
EXTRA_FIELDS = "_signalhooks_extra_fields"
_MISSING: Any = object()
