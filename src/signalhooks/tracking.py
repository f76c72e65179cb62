"""Cheap change tracking: remember the loaded value of the fields someone asked for.

Only instances built from rows (``Model.from_db``) or reloaded
(``refresh_from_db``) need a baseline: a constructed instance is ``adding`` and
everything about it is new. So the registry wraps those two methods of each model
class with tracked fields (:func:`install`), and the wrapper stores the tracked
values in one tuple on the instance. Comparing that tuple with the
current values is one C-level comparison when nothing changed, which is the common
case on the save path.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db.models import DEFERRED, Field, FileField, JSONField, Model
from django.utils.inspect import func_accepts_kwargs, func_supports_parameter

#: Prefix of the instance attribute holding the baseline. The rest of the name lists
#: the tracked attnames joined by ``__`` (which no field name contains), so a baseline
#: stored before ``track()`` added a field is still read right. One attribute, not one
#: per field, and on the instance, not its ModelState: CPython keeps a spare slot for
#: one more attribute in an object's inline values, and a model's instances share
#: their attribute names with that model alone (every ModelState shares its names
#: with every model's, so there the slot is soon gone and each row gets a dict).
STATE = "_signalhooks__"
#: What ``changes`` shows for a password hash, old and new.
REDACTED = "<redacted>"
#: ``changes`` when nothing changed; read-only so a hook cannot poison it.
NO_CHANGES: Mapping[str, tuple[Any, Any]] = MappingProxyType({})
#: Key in ``instance.__dict__`` of fields a pre_save hook assigned outside update_fields.
EXTRA_FIELDS = "_signalhooks_extra_fields"
#: Key in ``instance.__dict__`` of the attnames loaded from the database meanwhile.
LOADS = "_signalhooks_loads"

Changes = dict[str, tuple[Any, Any]]


class _Unloaded:
    """A field that was not loaded. Unlike Django's ``DEFERRED`` it stays itself
    through ``pickle`` and ``copy.deepcopy`` (both keep module-level names)."""

    __slots__ = ()

    def __reduce__(self) -> str:
        return "UNLOADED"

    def __repr__(self) -> str:
        return "<not loaded>"


UNLOADED = _Unloaded()
_MISSING: Any = object()


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


def _public(value: Any) -> Any:
    return DEFERRED if value is UNLOADED else value


class Tracker:
    """The tracked fields of one concrete model and how to compare them."""

    __slots__ = (
        "attnames",
        "attr",
        "fields",
        "getter",
        "model",
        "names",
        "plain",
        "_files",
        "_mutable",
        "_secret",
        "_single",
    )

    def __init__(self, model: type[Model], fields: Iterable[Field[Any, Any]]) -> None:
        ordered = sorted(set(fields), key=lambda f: f.creation_counter)
        self.model = model
        self.fields = tuple(ordered)
        self.names = tuple(f.name for f in ordered)
        self.attnames = tuple(f.attname for f in ordered)
        #: The ``ModelState`` attribute of this field layout's baseline.
        self.attr = STATE + "__".join(self.attnames)
        # itemgetter of several names returns a tuple, of one name the bare value;
        # both compare with ``==`` in C, which is all the hot path needs.
        self.getter: Callable[[dict[str, Any]], Any] = itemgetter(*self.attnames)
        self._single = len(ordered) == 1
        self._mutable = frozenset(i for i, f in enumerate(ordered) if is_mutable(f))
        # A FieldFile is renamed in place (``.save(name, content, save=False)``):
        # what identifies the value is its name, so that is what is kept.
        self._files = frozenset(i for i, f in enumerate(ordered) if isinstance(f, FileField))
        #: No file or mutable field: ``getter`` alone reads what is compared and kept.
        self.plain = not (self._mutable or self._files)
        is_user = model._meta.label_lower == _user_model_label()
        self._secret = frozenset(f.name for f in ordered if is_user and f.name == "password")

    # -- reading -------------------------------------------------------------------
    def read(self, d: dict[str, Any]) -> Any:
        """Return the tracked values of ``d`` as compared: a tuple, or one bare value."""
        if self.plain:
            try:
                return self.getter(d)
            except KeyError:  # a deferred field that was never loaded
                pass
        files = self._files
        values = tuple(
            value.name if i in files and isinstance(value, File) else value
            for i, value in enumerate(d.get(a, UNLOADED) for a in self.attnames)
        )
        return values[0] if self._single else values

    def keep(self, value: Any) -> Any:
        """Return ``value`` (from :meth:`read`) as stored: mutable values copied."""
        if not self._mutable:
            return value
        if self._single:
            return copy.deepcopy(value)
        mutable = self._mutable
        return tuple(copy.deepcopy(v) if i in mutable else v for i, v in enumerate(value))

    def capture(self, d: dict[str, Any]) -> Any:
        """Return the baseline of an instance whose ``__dict__`` is ``d``."""
        return self.keep(self.read(d))

    def _tuple(self, value: Any) -> tuple[Any, ...]:
        return (value,) if self._single else value

    def baseline(self, instance: Model) -> Any:
        """Return the stored baseline of ``instance`` (unloaded fields: ``UNLOADED``)."""
        value = getattr(instance, self.attr, _MISSING)
        return self._adopt(instance) if value is _MISSING else value

    def _adopt(self, state: Any) -> Any:
        # No baseline for this layout: one stored for another layout (tracking grew
        # after the instance was loaded) gives the values it has; the rest unknown.
        known: dict[str, Any] = {}
        for key in [k for k in vars(state) if k.startswith(STATE)]:
            stored = vars(state).pop(key)
            attnames = key[len(STATE) :].split("__")
            known.update(zip(attnames, stored if len(attnames) > 1 else (stored,), strict=True))
        values = tuple(known.get(a, UNLOADED) for a in self.attnames)
        value = values[0] if self._single else values
        if known:
            setattr(state, self.attr, value)
        return value

    def store(self, instance: Model, value: Any) -> None:
        """Make ``value`` (from :meth:`read`, as kept) the baseline of ``instance``."""
        setattr(instance, self.attr, value)

    def forget(self, instance: Model, attnames: Iterable[str]) -> None:
        """Mark ``attnames`` of ``instance`` as not loaded: they reload as a copy of the row."""
        gone = frozenset(attnames)
        old = self._tuple(self.baseline(instance))
        values = tuple(
            UNLOADED if a in gone else v for a, v in zip(self.attnames, old, strict=True)
        )
        self.store(instance, values[0] if self._single else values)

    def loaded(self, instance: Model, attname: str) -> Any:
        """Return the value of ``attname`` as loaded or last saved (else ``DEFERRED``)."""
        value = self._tuple(self.baseline(instance))[self.attnames.index(attname)]
        return _public(value)

    # -- events --------------------------------------------------------------------
    def refreshed(self, instance: Model, fields: Iterable[str] | None) -> None:
        """Make what ``refresh_from_db(fields=...)`` just loaded part of the baseline."""
        d = instance.__dict__
        new = self._tuple(self.read(d))
        if fields is None:
            scope = frozenset(self.attnames)
        else:
            names = frozenset(fields)
            pairs = zip(self.names, self.attnames, strict=True)
            scope = frozenset(a for n, a in pairs if n in names or a in names)
        old = self._tuple(self.baseline(instance))
        values = tuple(
            n if a in scope else o for a, o, n in zip(self.attnames, old, new, strict=True)
        )
        self.store(instance, self.keep(values[0] if self._single else values))

    def changes(
        self,
        instance: Model,
        *,
        adding: bool = False,
        only: frozenset[str] | None = None,
    ) -> Mapping[str, tuple[Any, Any]]:
        """Return ``{field name: (old, new)}`` for the tracked fields that differ.

        ``only``: names or attnames to consider (a save's ``update_fields``).
        """
        new = self.read(instance.__dict__)
        if adding:
            return self._build(self._nothing, self._tuple(new), everything=True, only=only)
        old = self.baseline(instance)
        if old == new:
            return NO_CHANGES
        return self._build(self._tuple(old), self._tuple(new), only=only)

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
                if name in self._secret:
                    result[name] = (REDACTED, REDACTED)
                else:
                    result[name] = (_public(before), _public(after))
        return result

    def saved(
        self, instance: Model, created: bool, update_fields: frozenset[str] | None
    ) -> Mapping[str, tuple[Any, Any]]:
        """Return the changes a save wrote and make the saved values the new baseline."""
        d = instance.__dict__
        if update_fields is None and not created:
            # The hot path, an update save, written out: every call saved counts.
            # Equal values mean nothing changed and the baseline is already right.
            try:
                new = self.getter(d) if self.plain else self.read(d)
            except KeyError:  # a deferred field that was never loaded
                new = self.read(d)
            old = getattr(instance, self.attr, _MISSING)
            if old == new:
                return NO_CHANGES
            if old is _MISSING:
                old = self._adopt(instance)
            setattr(instance, self.attr, self.keep(new) if self._mutable else new)
            if self._single and not self._secret and UNLOADED not in (old, new):
                return {self.names[0]: (old, new)}
            return self._build(self._tuple(old), self._tuple(new))
        new = self.read(d)
        if update_fields is None:
            self.store(instance, self.keep(new))
            return self._build(self._nothing, self._tuple(new), everything=True)
        # save(update_fields=...): only the listed fields (and any a pre_save hook
        # assigned, which signalhooks wrote too) were written.
        written = update_fields | d.pop(EXTRA_FIELDS, frozenset())
        old_values = self._tuple(self.baseline(instance))
        new_values = self._tuple(new)
        baseline = tuple(
            after if name in written or attname in written else before
            for name, attname, before, after in zip(
                self.names, self.attnames, old_values, new_values, strict=True
            )
        )
        self.store(instance, self.keep(baseline[0] if self._single else baseline))
        return self._build(old_values, new_values, everything=created, only=written)


# -- wrapping a model class's from_db / refresh_from_db ---------------------------------

#: Attribute of our wrappers: the function they call, and what the class had before.
_WRAPS = "__signalhooks_wraps__"
_OWN = "__signalhooks_own__"


def _original(model: type[Model], name: str) -> Callable[..., Any]:
    """Return the function ``model.<name>`` runs, looking through our own wrappers."""
    for klass in model.__mro__:
        attr = klass.__dict__.get(name)
        if attr is not None:
            func = attr.__func__ if isinstance(attr, classmethod) else attr
            original: Callable[..., Any] = getattr(func, _WRAPS, func)
            return original
    raise AttributeError(name)  # pragma: no cover - every model inherits Model's


def _set(model: type[Model], name: str, wrapper: Any, func: Callable[..., Any]) -> None:
    setattr(func, _WRAPS, _original(model, name))
    setattr(func, _OWN, model.__dict__.get(name))
    func.__name__ = func.__qualname__ = name
    setattr(model, name, wrapper)


def install(model: type[Model], tracker: Tracker | None) -> None:
    """Wrap ``model``'s ``refresh_from_db`` (and, when tracked, ``from_db``).

    The wrappers call whatever the class ran before (its own override or an
    inherited one), so a model's own ``from_db`` keeps working. The registry
    installs wrappers of their own on the proxies and children of ``model``.
    """
    uninstall(model)
    original_refresh = _original(model, "refresh_from_db")

    def refresh_from_db(self: Model, *args: Any, **kwargs: Any) -> None:
        original_refresh(self, *args, **kwargs)
        fields = kwargs.get("fields", args[1] if len(args) > 1 else None)
        d = self.__dict__
        loads: set[str] | None = d.get(LOADS)
        if loads is not None:  # a pre_save hook is running: reads are not assignments
            loads.update(d if fields is None else fields)
        if tracker is not None:
            tracker.refreshed(self, fields)

    _set(model, "refresh_from_db", refresh_from_db, refresh_from_db)
    if tracker is None:
        return
    original_from_db = _original(model, "from_db")
    from_db = _from_db(model, tracker, original_from_db)
    _set(model, "from_db", classmethod(from_db), from_db)


#: Django 6.1 passes ``fetch_mode=`` to ``from_db``; older versions pass nothing.
_FETCH_MODE = func_supports_parameter(Model.from_db, "fetch_mode")


def _from_db(
    model: type[Model], tracker: Tracker, original: Callable[..., Any]
) -> Callable[..., Model]:
    """Return the ``from_db`` of ``model``: ``original``, then store the baseline.

    The wrapper has the signature of ``original``: with ``fetch_mode`` where Django
    passes it and ``original`` takes it, else without, so a model's ``from_db`` of the
    old signature still gets Django's deprecation warning and is called as Django
    calls it.
    """
    passes = _FETCH_MODE and (
        func_supports_parameter(original, "fetch_mode") or func_accepts_kwargs(original)
    )
    param = ", fetch_mode=None" if passes else ""
    pass_on = ", fetch_mode=fetch_mode" if passes else ""
    if tracker.plain:
        # Runs once per row, 2,000 times for 2,000 rows, so it is written out for the
        # tracked attnames: plain attribute reads of the fresh instance (its __dict__ is
        # never asked for, which would build a dict for every row) and one plain
        # attribute write to its ModelState. Attnames are identifiers: safe to compile.
        values = ", ".join(f"new.{a}" for a in tracker.attnames)
        if len(tracker.attnames) > 1:
            values = f"({values})"
        body = (
            "    if len(values) == count:\n"
            f"        new.{tracker.attr} = {values}\n"
            "    else:  # loaded with .only() / .defer()\n"
            "        store(new, read(new.__dict__))\n"
        )
    else:  # files and mutable values: read and copied field by field
        body = "    store(new, capture(new.__dict__))\n"
    source = (
        f"def from_db(cls, db, field_names, values{param}):\n"
        f"    new = original(cls, db, field_names, values{pass_on})\n"
        f"{body}"
        "    return new\n"
    )
    namespace: dict[str, Any] = {
        "original": original,
        "count": len(model._meta.concrete_fields),
        "store": tracker.store,
        "read": tracker.read,
        "capture": tracker.capture,
    }
    exec(compile(source, f"<signalhooks from_db of {model._meta.label}>", "exec"), namespace)
    compiled: Callable[..., Model] = namespace["from_db"]
    return compiled


def uninstall(model: type[Model]) -> None:
    """Put back what ``model`` had before :func:`install` (nothing, or its own method)."""
    for name in ("from_db", "refresh_from_db"):
        attr = model.__dict__.get(name)
        func = attr.__func__ if isinstance(attr, classmethod) else attr
        if func is None or not hasattr(func, _WRAPS):
            continue
        own = getattr(func, _OWN)
        if own is None:
            delattr(model, name)
        else:
            setattr(model, name, own)
