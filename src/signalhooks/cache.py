"""Declarative cache invalidation: ``invalidate()`` rules and the ``cached()`` reader.

A rule is a set of hooks in the registry (post_save, post_delete, m2m_changed and a
bulk handler). On the save path it only formats keys and hands them to
:mod:`signalhooks.batching`, which sends everything of one transaction in one
Redis round trip after commit.
"""

from __future__ import annotations

import itertools
import re
import string
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from django.core.cache import InvalidCacheBackendError, caches
from django.core.checks import CheckMessage, Error
from django.db.models import DEFERRED, Model, QuerySet

from .batching import Invalidation, queue
from .conf import conf
from .hooks import Fields, _fields, _senders
from .registry import Event, Hook, ModelRef, registry
from .tracking import find_field

T = TypeVar("T")

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_TAG_PREFIX = "signalhooks:tag:"


def glob_escape(value: str) -> str:
    """Escape ``value`` so a Redis glob matches it literally."""
    return _GLOB_SPECIAL.sub(r"\\\1", value)


def tag_key(tag: str) -> str:
    """Return the cache key holding the generation of ``tag``."""
    return f"{_TAG_PREFIX}{tag}"


def _template_fields(template: str) -> list[str]:
    return [
        name.split(".")[0].split("[")[0]
        for _, name, _, _ in string.Formatter().parse(template)
        if name is not None
    ]


class _Values(dict[str, Any]):
    # A template naming a field the model lacks is reported by system check
    # signalhooks.E011; at run time it stays verbatim rather than failing the save.
    def __missing__(self, name: str) -> str:
        return "{" + name + "}"


class Rule:
    """One ``invalidate()`` call: templates for keys, tags and patterns of a model."""

    def __init__(
        self,
        model: ModelRef,
        keys: Sequence[str],
        tags: Sequence[str],
        patterns: Sequence[str],
        cache: str | None,
        source: str,
    ) -> None:
        self.sender = model
        self.keys = tuple(keys)
        self.tags = tuple(tags)
        self.patterns = tuple(patterns)
        self.cache = cache
        self.source = source
        self.names = sorted(
            {n for t in (*self.keys, *self.tags, *self.patterns) for n in _template_fields(t)}
        )
        # Resolved when the model is known: template name -> (attname, field name).
        self._columns: dict[str, tuple[str, str]] | None = None

    @property
    def label(self) -> str:
        parts = [
            f"{name}={list(values)!r}"
            for name, values in (
                ("keys", self.keys),
                ("tags", self.tags),
                ("patterns", self.patterns),
            )
            if values
        ]
        return f"invalidate({', '.join(parts)})"

    @property
    def alias(self) -> str:
        return self.cache or str(conf.CACHE)

    def columns(self, model: type[Model]) -> dict[str, tuple[str, str]]:
        if self._columns is None:
            columns = {}
            for name in self.names:
                if name == "pk":
                    pk = model._meta.pk
                    assert pk is not None
                    columns[name] = (pk.attname, pk.name)
                elif (field := find_field(model, name)) is not None:
                    columns[name] = (field.attname, field.name)
            self._columns = columns
        return self._columns

    # -- formatting --------------------------------------------------------------------
    def _format(self, values: dict[str, Any]) -> Invalidation:
        # Runs on every save of the model: no work for what the rule does not use.
        values = _Values(values)
        return Invalidation(
            keys={t.format_map(values) for t in self.keys},
            tags={t.format_map(values) for t in self.tags},
            patterns={
                t.format_map(_Values({k: glob_escape(str(v)) for k, v in values.items()}))
                for t in self.patterns
            },
        )

    def for_values(self, rows: Iterable[Mapping[str, Any]], model: type[Model]) -> Invalidation:
        """Return the invalidation for rows given as ``{attname: value}`` dicts."""
        columns = self.columns(model)
        result = Invalidation()
        for row in rows:
            result.merge(self._format({n: row[a] for n, (a, _) in columns.items()}))
        return result

    def for_instance(
        self, instance: Model, changes: Mapping[str, tuple[Any, Any]], created: bool = False
    ) -> Invalidation:
        """Return the invalidation for ``instance``: current values, and old ones if changed."""
        columns = self.columns(type(instance))
        d = instance.__dict__
        current = {n: d.get(a) for n, (a, _) in columns.items()}
        result = self._format(current)
        if changes and not created:
            # A template field changed: the keys built from the old value go too.
            old = {
                name: changes[field_name][0] if field_name in changes else current[name]
                for name, (_, field_name) in columns.items()
            }
            if old != current and DEFERRED not in old.values():
                result.merge(self._format(old))
        return result

    # -- hooks -------------------------------------------------------------------------
    def on_save(
        self,
        *,
        instance: Model,
        changes: Mapping[str, Any],
        using: str,
        created: bool = False,
        **kwargs: Any,
    ) -> None:
        queue(using, self.alias, self.for_instance(instance, changes, created))

    def on_delete(
        self, *, instance: Model, changes: Mapping[str, Any], using: str, **kwargs: Any
    ) -> None:
        queue(using, self.alias, self.for_instance(instance, changes))

    def on_m2m(
        self,
        *,
        instance: Model,
        action: str,
        model: type[Model],
        pk_set: set[Any] | None,
        using: str,
        sender: type[Model],
        **kwargs: Any,
    ) -> None:
        rule_model = self.model
        assert rule_model is not None
        mine = isinstance(instance, rule_model)
        others = issubclass(model, rule_model)
        stash = f"_signalhooks_clear_{id(self)}"
        if action in ("post_add", "post_remove"):
            result = self.for_instance(instance, {}) if mine else Invalidation()
            if others and pk_set:
                rows = rule_model._base_manager.db_manager(using).filter(pk__in=pk_set)
                result.merge(self._rows(rows, rule_model))
            queue(using, self.alias, result)
        elif action == "pre_clear" and others:
            # pk_set is None for a clear: read the linked rows while they are linked,
            # invalidate once they are not.
            linked = _linked(rule_model, sender, instance, using)
            instance.__dict__[stash] = self._rows(linked, rule_model)
        elif action == "post_clear":
            result = instance.__dict__.pop(stash, Invalidation())
            if mine:
                result.merge(self.for_instance(instance, {}))
            queue(using, self.alias, result)

    def _rows(self, rows: QuerySet[Model], model: type[Model]) -> Invalidation:
        columns = {a for a, _ in self.columns(model).values()}
        return self.for_values(rows.values(*columns), model)

    def on_bulk(self, change: Any) -> None:
        rows = [row for pair in change.rows for row in pair if row is not None]
        queue(change.using, self.alias, self.for_values(rows, change.model))

    model: type[Model] | None = None

    # -- checks ------------------------------------------------------------------------
    def check(self, model: type[Model]) -> list[CheckMessage]:
        errors: list[CheckMessage] = []
        where = f"{model._meta.label} {self.label} ({self.source})"
        for name in self.names:
            if name != "pk" and find_field(model, name) is None:
                errors.append(
                    Error(
                        f"{where}: the template field {name!r} is not a concrete field "
                        f"of {model._meta.label}.",
                        hint="Use one of: pk, "
                        + ", ".join(f.name for f in model._meta.concrete_fields),
                        obj=model,
                        id="signalhooks.E011",
                    )
                )
        try:
            backend = caches[self.alias]
        except InvalidCacheBackendError:
            errors.append(
                Error(
                    f"{where}: the cache alias {self.alias!r} is not in settings.CACHES.",
                    hint="Pass cache= with a configured alias, or set SIGNALHOOKS['CACHE'].",
                    obj=model,
                    id="signalhooks.E010",
                )
            )
        else:
            if self.patterns and not hasattr(backend, "delete_pattern"):
                errors.append(
                    Error(
                        f"{where}: patterns need django-redis, but the cache {self.alias!r} "
                        f"is {type(backend).__module__}.{type(backend).__qualname__}.",
                        hint="Use django_redis.cache.RedisCache for this alias, or list keys/tags.",
                        obj=model,
                        id="signalhooks.E012",
                    )
                )
        return errors


def _linked(
    rule_model: type[Model], through: type[Model], instance: Model, using: str
) -> QuerySet[Model]:
    """Return the ``rule_model`` rows linked to ``instance`` through ``through``."""
    forward = (f.name for f in rule_model._meta.many_to_many if f.remote_field.through is through)
    reverse = (
        r.name
        for r in rule_model._meta.related_objects
        if r.many_to_many and r.through is through  # type: ignore[attr-defined]
    )
    lookup = next(itertools.chain(forward, reverse))
    return rule_model._base_manager.db_manager(using).filter(**{lookup: instance.pk})


def invalidate(
    model: ModelRef,
    *,
    keys: Sequence[str] = (),
    tags: Sequence[str] = (),
    patterns: Sequence[str] = (),
    changed: Fields = None,
    when: Callable[[Any], bool] | None = None,
    cache: str | None = None,
) -> Rule:
    """Delete cache ``keys``, bump ``tags`` and delete ``patterns`` when ``model`` rows change.

    Templates are formatted with the instance's concrete fields (``{pk}``,
    ``{slug}``, ``{author_id}``). Runs on create, update, delete and m2m changes,
    after commit, batched into one Redis round trip per transaction.
    """
    (sender,) = _senders("invalidate", (model,))
    for name, values in (("keys", keys), ("tags", tags), ("patterns", patterns)):
        if isinstance(values, str):
            raise TypeError(
                f"invalidate({name}={values!r}): pass a list, e.g. {name}=[{values!r}]."
            )
    if not (keys or tags or patterns):
        raise TypeError("invalidate() needs keys=, tags= or patterns= to invalidate.")
    frame = sys._getframe(1)
    source = f"{frame.f_code.co_filename}:{frame.f_lineno}"
    rule = Rule(sender, keys, tags, patterns, cache, source)
    changed_names = _fields("invalidate", (sender,), changed)
    # Fields the model lacks are left out here and reported by system check E011.
    template_fields = frozenset(n for n in rule.names if n != "pk")
    details: dict[str, Any] = {
        k: list(v) for k, v in (("keys", keys), ("tags", tags), ("patterns", patterns)) if v
    }
    details["cache"] = cache or "SIGNALHOOKS['CACHE']"
    common: dict[str, Any] = {
        "sender": sender,
        "kind": "rule",
        "label": rule.label,
        "source": source,
        "details": details,
    }
    save_hook = registry.add(
        Hook(
            func=rule.on_save,
            event=Event.POST_SAVE,
            changed=changed_names,
            when=when,
            track=template_fields,
            bulk=rule.on_bulk,
            bulk_fields=frozenset(),  # filled in below once the model is known
            check=rule.check,
            **common,
        )
    )
    registry.add(Hook(func=rule.on_delete, event=Event.POST_DELETE, when=when, **common))
    registry.add(Hook(func=rule.on_m2m, event=Event.M2M_CHANGED, **common))
    rule.model = save_hook.model
    if save_hook.model is not None:
        save_hook.bulk_fields = frozenset(a for a, _ in rule.columns(save_hook.model).values())
    else:
        _pending_rules.append((rule, save_hook))
    return rule


#: Rules declared before the app registry was ready; finished by :func:`finish_rules`.
_pending_rules: list[tuple[Rule, Hook]] = []


def finish_rules() -> None:
    """Resolve the models of rules declared before ``ready()``."""
    while _pending_rules:
        rule, hook = _pending_rules.pop()
        rule.model = hook.model
        if hook.model is not None:
            hook.bulk_fields = frozenset(a for a, _ in rule.columns(hook.model).values())


# -- reading ----------------------------------------------------------------------------


def _generations(backend: Any, tags: Sequence[str]) -> list[Any]:
    keys = [tag_key(t) for t in tags]
    found = backend.get_many(keys)
    missing = [k for k in keys if k not in found]
    if missing:
        # A generation that is gone (evicted, never set) restarts at the clock, never
        # at a number an older value could have been stored under.
        start = time.time_ns()
        for key in missing:
            backend.add(key, start, timeout=None)
        found.update(backend.get_many(missing))
    return [found.get(k, 0) for k in keys]


def cached(
    key: str,
    compute: Callable[[], T],
    *,
    tags: Sequence[str] = (),
    timeout: float | None = 300,
    cache: str | None = None,
) -> T:
    """Return the value cached under ``key`` and ``tags``, computing and storing it if missing.

    The tags' generations are read *before* ``compute()`` runs: if a commit bumps a
    tag meanwhile, the value is stored under the old generation and never served.
    """
    backend = caches[cache or conf.CACHE]
    if tags:
        generations = _generations(backend, tags)
        key = f"{key}@{'.'.join(map(str, generations))}"
    sentinel = object()
    found = backend.get(key, sentinel)
    if found is not sentinel:
        return cast(T, found)
    value = compute()
    backend.set(key, value, timeout=timeout)
    return value
