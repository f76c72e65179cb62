"""Declarative cache invalidation: ``invalidate()`` rules and the ``cached()`` reader.

A rule is a few hooks in the registry (post_save, pre_delete, m2m_changed, and a
bulk handler for ``HooksQuerySet`` and counters). The templates are compiled once
per model into ``str.format`` strings over attnames, so on the save path a rule
formats them straight from ``instance.__dict__`` and hands the strings to
:mod:`signalhooks.batching`. Nothing talks to the cache before the flush.
"""

from __future__ import annotations

import re
import string
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar, cast

from django.apps import apps
from django.core.cache import InvalidCacheBackendError, caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured
from django.db.models import DEFERRED, CompositePrimaryKey, Field, Model, QuerySet

from . import arguments, breaker, cluster, hits, leases
from .arguments import Fields
from .batching import queue
from .conf import conf
from .epoch import EPOCH_KEY, clock_us
from .hooktypes import UNSET, BulkChange, Event, Hook, ModelRef, Transition
from .invalidation import redis_client
from .keys import tag_key
from .leases import MISSING, Lease, backend_timeout, early_draw
from .registry import registry
from .stale_reads import warn_stale_reads
from .tracking import find_field

__all__ = ["cached", "glob_escape", "invalidate", "is_cached", "tag_key"]

T = TypeVar("T")

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_CONVERSIONS: dict[str, Callable[[Any], str]] = {"r": repr, "s": str, "a": ascii}


def glob_escape(value: str) -> str:
    """Escape ``value`` so a Redis glob pattern matches it literally."""
    return _GLOB_SPECIAL.sub(r"\\\1", value)


def _parse(template: str, where: str) -> list[tuple[str, str | None, str | None, str]]:
    """Split ``template`` into (literal, field, conversion, spec); refuse what cannot work."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValueError(
            f"{where}: {template!r} is not a valid template ({error}). Write fields as "
            "{field} and a literal brace as {{ or }}."
        ) from None
    parts = []
    for literal, name, spec, conversion in parsed:
        if name is not None:
            if not name.isidentifier():
                raise ValueError(
                    f"{where}: {template!r} uses {{{name}}}. Templates take the model's "
                    "concrete fields by name only, e.g. {pk}, {slug} or {author_id} "
                    "(no positions, attributes or indexes)."
                )
            if conversion and conversion not in _CONVERSIONS:
                raise ValueError(
                    f"{where}: {template!r} uses the conversion !{conversion}; use !r, !s or !a."
                )
            if spec and "{" in spec:
                raise ValueError(
                    f"{where}: {template!r} nests a field in a format spec; use a fixed spec "
                    "such as {pk:08d}."
                )
        parts.append((literal, name, conversion, spec or ""))
    return parts


#: What a rule's compiled templates give for one row: (keys, tags, patterns).
Strings = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def _compile_strings(
    parsed: Sequence[Sequence[Sequence[tuple[str, str | None, str | None, str]]]],
    columns: Mapping[str, str | tuple[str, ...]],
    where: str,
) -> Callable[[Mapping[str, Any]], Strings]:
    """Return one function formatting every template of a rule from ``{attname: value}``.

    ``columns`` maps a template field to its attname, or to the attnames of the parts
    of a composite primary key, whose value is the tuple of theirs (as ``instance.pk``).

    ``parsed`` holds the parsed key, tag and pattern templates. The function is
    Python source compiled once: each template is an f-string over the row, so a
    save formats them in a few opcodes instead of one ``str.format_map`` (or a loop
    over parts) per template. A template without fields is a constant. A missing
    attname raises KeyError, as ``format_map`` did. Pattern values are glob-escaped.
    """
    names: dict[str, Any] = {"_esc": glob_escape}

    def bind(value: Any) -> str:
        name = f"_v{len(names)}"
        names[name] = value
        return name

    def template(parts: Sequence[tuple[str, str | None, str | None, str]], glob: bool) -> str:
        pieces = []
        for literal, name, conversion, spec in parts:
            attname = None if name is None else columns.get(name)
            if name is not None and attname is None:
                literal += f"{{{name}}}"  # unknown field: verbatim (system check E011)
            if literal:
                pieces.append(repr(literal))
            if attname is None:
                continue
            if isinstance(attname, tuple):
                value = "(" + "".join(f"d[{bind(a)}], " for a in attname) + ")"
            else:
                value = f"d[{bind(attname)}]"
            if conversion:
                value = f"{_CONVERSIONS[conversion].__name__}({value})"
            if glob:
                pieces.append(f'f"{{_esc(format({value}, {bind(spec)}))}}"')
            else:
                pieces.append(f'f"{{{value}:{{{bind(spec)}}}}}"' if spec else f'f"{{{value}}}"')
        return " ".join(pieces) or "''"

    kinds = [
        "(" + "".join(template(parts, glob=kind == 2) + ", " for parts in templates) + ")"
        for kind, templates in enumerate(parsed)
    ]
    source = f"def strings(d):\n    return ({', '.join(kinds)})\n"
    exec(compile(source, f"<{where}>", "exec"), names)
    return cast(Callable[[Mapping[str, Any]], Strings], names["strings"])


class Rule:
    """One ``invalidate()`` call: key, tag and pattern templates of one model."""

    model: type[Model] | None = None

    def __init__(
        self,
        sender: ModelRef,
        keys: Sequence[str],
        tags: Sequence[str],
        patterns: Sequence[str],
        cache: str | None,
        changed: frozenset[str],
        source: str,
        transition: Transition | None = None,
    ) -> None:
        self.sender = sender
        self.keys = tuple(keys)
        self.tags = tuple(tags)
        self.patterns = tuple(patterns)
        self.cache = cache
        self.changed = changed
        self.source = source
        #: What the change of the one ``changed=`` field must look like (``was=``, …).
        self.transition = transition
        where = f"invalidate({sender if isinstance(sender, str) else sender._meta.label})"
        self._parsed = {t: _parse(t, where) for t in (*self.keys, *self.tags, *self.patterns)}
        #: Every field name the templates use.
        self.names = sorted(
            {name for parts in self._parsed.values() for _, name, _, _ in parts if name}
        )
        # Compiled by bind() once the model is known.
        self._where = where
        self._strings = _compile_strings([(), (), ()], {}, where)  # bind() compiles them
        #: Field name (as ``changes`` has it) -> attname, for the template fields.
        self._by_name: dict[str, str] = {}
        self.attnames: frozenset[str] = frozenset()
        self._changed_attnames: tuple[str, ...] = ()
        #: The attname of the transition's field, for bulk rows.
        self._transition_attname = ""
        self._pk_only = False
        self._pk_attname = "pk"

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

    def bind(self, model: type[Model]) -> None:
        """Compile the templates for ``model``'s fields (once, at registration)."""
        pk = model._meta.pk
        assert pk is not None
        columns: dict[str, str | tuple[str, ...]] = {}
        self._by_name = {}
        for name in self.names:
            field = pk if name == "pk" else find_field(model, name)
            if isinstance(field, CompositePrimaryKey):
                # No attname of its own in a row or in __dict__: read its parts, so a
                # save formats {pk} without loading it.
                parts = [cast("Field[Any, Any]", f) for f in field.fields]
                columns[name] = tuple(f.attname for f in parts)
                self._by_name.update((f.name, f.attname) for f in parts)
            elif field is not None:
                columns[name] = field.attname
                self._by_name[field.name] = field.attname
        self.model = model
        self.attnames = frozenset(a for column in columns.values() for a in _attnames(column))
        self._strings = _compile_strings(
            [[self._parsed[t] for t in kind] for kind in (self.keys, self.tags, self.patterns)],
            columns,
            self._where,
        )
        self._changed_attnames = tuple(
            sorted(f.attname for n in self.changed if (f := find_field(model, n)) is not None)
        )
        self._pk_only = self.attnames <= {pk.attname}
        if self.transition is not None:
            field = find_field(model, self.transition.field)
            assert field is not None  # the registry refused an unknown changed= field
            self._transition_attname = field.attname
        #: The attname an m2m ``pk_set`` row of a pk-only rule is keyed by.
        self._pk_attname = pk.attname

    @property
    def bulk_fields(self) -> frozenset[str]:
        return self.attnames | frozenset(self._changed_attnames)

    # -- formatting --------------------------------------------------------------------
    def _render(
        self, values: Mapping[str, Any], keys: list[str], tags: list[str], patterns: list[str]
    ) -> None:
        """Format the templates with ``values`` (by attname); KeyError if one is missing."""
        new_keys, new_tags, new_patterns = self._strings(values)
        keys += new_keys
        tags += new_tags
        patterns += new_patterns

    def _instance_values(self, instance: Model) -> dict[str, Any] | None:
        """Return the template fields of ``instance``, loading deferred ones in one query.

        None if the row is gone (nothing to format the missing fields with).
        """
        d = instance.__dict__
        values = {a: d[a] for a in self.attnames if a in d}
        missing = sorted(self.attnames - values.keys())  # not empty: a KeyError got us here
        rows = type(instance)._base_manager.db_manager(instance._state.db)
        row = rows.filter(pk=instance.pk).values(*missing).first()
        if row is None:
            return None
        values.update(row)
        return values

    def for_instance(
        self,
        instance: Model,
        changes: Mapping[str, tuple[Any, Any]],
        created: bool,
        keys: list[str],
        tags: list[str],
        patterns: list[str],
    ) -> None:
        """Add the strings for ``instance``, and for its old values if a template field changed."""
        values: Mapping[str, Any] = instance.__dict__
        try:
            self._render(values, keys, tags, patterns)
        except KeyError:
            loaded = self._instance_values(instance)
            if loaded is None:
                return
            values = loaded
            self._render(values, keys, tags, patterns)
        if not changes or created:
            return
        old: dict[str, Any] | None = None
        by_name = self._by_name
        for name, (before, _) in changes.items():
            attname = by_name.get(name)
            # An old value that was never loaded (only()/defer()) is unknown.
            if attname is not None and before is not DEFERRED:
                if old is None:
                    old = dict(values)
                old[attname] = before
        if old is not None:
            self._render(old, keys, tags, patterns)

    def for_rows(
        self,
        rows: Iterable[Mapping[str, Any]],
        keys: list[str],
        tags: list[str],
        patterns: list[str],
    ) -> None:
        """Add the strings for rows given as ``{attname: value}``."""
        for row in rows:
            self._render(row, keys, tags, patterns)

    # -- hooks -------------------------------------------------------------------------
    def on_save(
        self,
        *,
        instance: Model,
        changes: Mapping[str, tuple[Any, Any]],
        using: str,
        created: bool = False,
        **kwargs: Any,
    ) -> None:
        self.saved(instance, changes, using, created)

    def saved(
        self, instance: Model, changes: Mapping[str, tuple[Any, Any]], using: str, created: bool
    ) -> None:
        """The save path (also the hook's ``direct``): format, then add to the batch."""
        # Most saves change no template field: one call of the compiled templates.
        if not changes or created:
            try:
                strings = self._strings(instance.__dict__)
            except KeyError:
                pass  # a deferred template field: for_instance() loads it
            else:
                queue(using, self.alias, *strings)
                return
        keys: list[str] = []
        tags: list[str] = []
        patterns: list[str] = []
        self.for_instance(instance, changes, created, keys, tags, patterns)
        queue(using, self.alias, keys, tags, patterns)

    def on_delete(
        self,
        *,
        instance: Model,
        changes: Mapping[str, tuple[Any, Any]],
        using: str,
        **kwargs: Any,
    ) -> None:
        # pre_delete, not post_delete: a deferred template field can still be loaded.
        # Deletes run inside Django's atomic block, so the keys still go after commit.
        keys: list[str] = []
        tags: list[str] = []
        patterns: list[str] = []
        self.for_instance(instance, changes, False, keys, tags, patterns)
        queue(using, self.alias, keys, tags, patterns)

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
        keys: list[str] = []
        tags: list[str] = []
        patterns: list[str] = []
        mine = isinstance(instance, rule_model)
        others = issubclass(model, rule_model)
        stash = f"_signalhooks_clear_{id(self)}"
        if action in ("post_add", "post_remove"):
            if mine:
                self.for_instance(instance, {}, False, keys, tags, patterns)
            if others and pk_set:
                field = _target_field(sender, model)
                self.for_rows(self._rows_by(model, field, pk_set, using), keys, tags, patterns)
        elif action == "pre_clear" and others:
            # clear() sends no pk_set: read the linked rows while they are linked, and
            # invalidate them once they are not.
            instance.__dict__[stash] = list(self._values(_linked(model, sender, instance, using)))
            return
        elif action == "post_clear":
            self.for_rows(instance.__dict__.pop(stash, ()), keys, tags, patterns)
            if mine:
                self.for_instance(instance, {}, False, keys, tags, patterns)
        queue(using, self.alias, keys, tags, patterns)

    def _values(self, rows: QuerySet[Model]) -> Iterable[Mapping[str, Any]]:
        return rows.values(*(sorted(self.attnames) or ["pk"]))

    def _rows_by(
        self, model: type[Model], field: Field[Any, Any], values: Iterable[Any], using: str
    ) -> Iterable[Mapping[str, Any]]:
        """Return the rows of ``model`` whose ``field`` is in ``values`` (an m2m ``pk_set``).

        ``model`` is the rule's model or one of its multi-table children: the child's
        rows have the parent's fields, and its primary key (the parent link) holds the
        parent's.
        """
        if field.primary_key and self._pk_only:
            return [{self._pk_attname: value} for value in values]  # no query needed
        rows = model._base_manager.db_manager(using)
        return self._values(rows.filter(**{f"{field.attname}__in": values}))

    def on_bulk(self, change: BulkChange) -> None:
        """Invalidate for rows changed in bulk (``HooksQuerySet``, counters): old and new.

        ``changed=`` and its transition apply as for a save (a created row's old value
        is None); a deleted row, or one whose old values are unknown, always invalidates.
        """
        keys: list[str] = []
        tags: list[str] = []
        patterns: list[str] = []
        changed = self._changed_attnames
        for before, after in change.rows:
            if before is after:
                # The same row twice (a counter's parent): changed, old values unknown.
                after = None
            elif after is not None:
                if before is not None and changed and all(before[a] == after[a] for a in changed):
                    continue  # changed= fields untouched: nothing to do, as for a save
                if not self._transits(before, after):
                    continue
                if before is not None and all(before[a] == after[a] for a in self.attnames):
                    after = None  # same strings twice
            for row in (before, after):
                if row is not None:
                    self._render(row, keys, tags, patterns)
        if keys or tags or patterns:
            queue(change.using, self.alias, keys, tags, patterns)

    def _transits(self, before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
        """Return whether a bulk row's change matches the transition (if the rule has one)."""
        transition = self.transition
        if transition is None:
            return True
        attname = self._transition_attname
        old = None if before is None else before[attname]
        return transition.matches({transition.field: (old, after[attname])})

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
                        + ", ".join(f.attname for f in model._meta.concrete_fields),
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
                    hint=f"Define {self.alias!r} in settings.CACHES, or "
                    + ("pass cache=" if self.cache else "set SIGNALHOOKS['CACHE'] to")
                    + f" one of the configured aliases: {', '.join(map(repr, caches.settings))}.",
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


def _attnames(column: str | tuple[str, ...]) -> tuple[str, ...]:
    return column if isinstance(column, tuple) else (column,)


def _target_field(through: type[Model], model: type[Model]) -> Field[Any, Any]:
    """Return the field of ``model`` that an m2m ``pk_set`` holds (the FK's ``to_field``)."""
    return next(
        cast("Field[Any, Any]", field.target_field)  # type: ignore[attr-defined]
        for field in through._meta.concrete_fields
        if field.is_relation and issubclass(model, cast(type[Model], field.related_model))
    )


def _linked(
    model: type[Model], through: type[Model], instance: Model, using: str
) -> QuerySet[Model]:
    """Return the ``model`` rows linked to ``instance`` through ``through``.

    ``model`` is the m2m's other side: the rule's model or a multi-table child of it
    (only the child has the relation then).
    """
    forward = [f.name for f in model._meta.many_to_many if f.remote_field.through is through]
    reverse = [
        r.name
        for r in model._meta.related_objects
        if r.many_to_many and r.through is through  # type: ignore[attr-defined]
    ]
    lookup = (forward + reverse)[0]
    return model._base_manager.db_manager(using).filter(**{lookup: instance.pk})


def invalidate(
    model: ModelRef,
    *,
    keys: Sequence[str] = (),
    tags: Sequence[str] = (),
    patterns: Sequence[str] = (),
    changed: Fields = None,
    was: Any = UNSET,
    is_now: Any = UNSET,
    was_not: Any = UNSET,
    is_not: Any = UNSET,
    changes_to: Any = UNSET,
    when: Callable[[Any], bool] | None = None,
    cache: str | None = None,
) -> Rule:
    """Delete cache ``keys``, bump ``tags`` and delete ``patterns`` when ``model`` rows change.

    Templates are formatted with the row's concrete fields (``{pk}``, ``{slug}``,
    ``{author_id}``); when one changes, the strings for its old value go too. Runs on
    create, update, delete and m2m changes, after commit, one round trip per
    transaction. ``changed=``, the transition keywords (``was=``, ``is_now=``,
    ``was_not=``, ``is_not=``, ``changes_to=``) and ``when=`` limit it as for
    ``@post_save``; ``HooksQuerySet`` bulk operations apply ``changed=`` and the
    transition to each row's old and new values. Deletes and m2m changes always
    invalidate, and bulk operations and m2m changes ignore ``when=`` (they invalidate
    rather than miss).
    """
    (sender,) = arguments.senders("invalidate", (model,))
    for name, values in (("keys", keys), ("tags", tags), ("patterns", patterns)):
        if isinstance(values, str):
            raise TypeError(
                f"invalidate({name}={values!r}): pass a list, e.g. {name}=[{values!r}]."
            )
    if not (keys or tags or patterns):
        raise TypeError("invalidate() needs keys=, tags= or patterns= to invalidate.")
    frame = sys._getframe(1)
    source = f"{frame.f_code.co_filename}:{frame.f_lineno}"
    changed_names = arguments.fields("invalidate", (sender,), changed)
    transition = arguments.transition(
        "invalidate",
        changed_names,
        {
            "was": was,
            "is_now": is_now,
            "was_not": was_not,
            "is_not": is_not,
            "changes_to": changes_to,
        },
    )
    rule = Rule(sender, keys, tags, patterns, cache, changed_names, source, transition)
    _check_now(rule)
    details: dict[str, Any] = {
        k: list(v) for k, v in (("keys", keys), ("tags", tags), ("patterns", patterns)) if v
    }
    details["cache"] = cache or f"{conf.CACHE} (SIGNALHOOKS['CACHE'])"
    common: dict[str, Any] = {
        "sender": sender,
        "kind": "rule",
        "label": rule.label,
        "source": source,
        "details": details,
    }
    save_hook = Hook(
        func=rule.on_save,
        direct=rule.saved,
        event=Event.POST_SAVE,
        changed=changed_names,
        transition=transition,
        when=when,
        # The core keeps the loaded values of the template fields: the old keys.
        track=frozenset(n for n in rule.names if n != "pk"),
        bulk=rule.on_bulk,
        check=rule.check,
        **common,
    )
    registry.add(save_hook)
    registry.add(Hook(func=rule.on_delete, event=Event.PRE_DELETE, when=when, **common))
    registry.add(Hook(func=rule.on_m2m, event=Event.M2M_CHANGED, **common))
    if save_hook.model is None:
        _pending_rules.append((rule, save_hook))  # the app registry is not ready yet
    else:
        _bind(rule, save_hook)
    return rule


def _check_now(rule: Rule) -> None:
    """Refuse a rule that cannot work where it is declared, once the models are loaded.

    Hooks modules (imported from ``ready()``) and anything later are checked here; a
    rule declared while the models load is checked by :func:`finish_rules`. Either way
    a save never raises because of a rule.
    """
    if not apps.models_ready:
        return
    # arguments.senders() refused a lazy sender that names no model.
    model = apps.get_model(rule.sender) if isinstance(rule.sender, str) else rule.sender
    errors = rule.check(model)
    if errors:
        raise ImproperlyConfigured(f"{errors[0].msg} {errors[0].hint}")


def _bind(rule: Rule, hook: Hook) -> None:
    assert hook.model is not None
    rule.bind(hook.model)
    hook.bulk_fields = rule.bulk_fields


#: Rules declared before the app registry was ready; bound by :func:`finish_rules`.
_pending_rules: list[tuple[Rule, Hook]] = []


def finish_rules() -> None:
    """Compile the rules declared before ``ready()``; refuse every rule that cannot work.

    Called from ``ready()``: a rule in a ``models.py`` that names an unknown field, an
    unknown cache or a pattern on a cache without ``delete_pattern`` stops start-up
    (every server, not only those that run ``manage.py check``).
    """
    # A rule whose model never resolved is reported by the system check signalhooks.E001.
    for rule, hook in [(r, h) for r, h in _pending_rules if h.model is not None]:
        _bind(rule, hook)
    _pending_rules.clear()
    errors = [
        error
        for hook in registry.hooks()
        if hook.kind == "rule" and hook.check is not None and hook.model is not None
        for error in hook.check(hook.model)
    ]
    if errors:
        raise ImproperlyConfigured(
            "signalhooks: these invalidate() rules cannot work:\n"
            + "\n".join(f"  {error.msg} {error.hint}" for error in errors)
        )


# -- reading ------------------------------------------------------------------------------


def _generic_key(backend: Any, key: str, tags: Sequence[str]) -> str:
    """Return the key ``cached()`` uses on a cache without Lua: with the epoch and generations."""
    names = [EPOCH_KEY, *(tag_key(t) for t in tags)]
    found = backend.get_many(names)
    missing = [name for name in names if name not in found]
    if missing:
        # Gone (never set, evicted): restart at the clock, above any number used before.
        start = clock_us()
        for name in missing:
            timeout = None if name == EPOCH_KEY else int(conf.GENERATION_TIMEOUT)
            backend.add(name, start, timeout=timeout)
        found.update(backend.get_many(missing))
    numbers = [str(found.get(name, 0)) for name in names]
    return "@".join([key, numbers[0], *([".".join(numbers[1:])] if tags else [])])


def _leasing(backend: Any) -> tuple[Any, Any]:
    """Return the client and the lease module for ``backend``: django-redis, a cluster, or None."""
    client = redis_client(backend)
    if client is not None:
        return client, leases
    client = cluster.cluster_client(backend)
    return client, None if client is None else cluster


def _quietly(alias: str, doing: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        call(*args, **kwargs)
    except Exception as error:
        breaker.failed(alias, doing, error)


def cached(
    key: str,
    compute: Callable[[], T],
    *,
    tags: Sequence[str] = (),
    timeout: float | None = DEFAULT_TIMEOUT,
    cache: str | None = None,
    stale: bool = False,
    early: float = 0.0,
) -> T:
    """Return the value cached under ``key`` and ``tags``, computing and storing it if missing.

    The epoch and the tags' generations are read *before* ``compute()`` runs, and on
    django-redis and on Redis Cluster (django-valkey) a miss takes a lease that an
    invalidation cancels: a value computed from rows read before a commit is never
    served after that commit's invalidation.
    Concurrent misses of one key compute once; the others wait for the value, or take
    the last one with ``stale=True``. ``early`` (XFetch's beta, e.g. 1.0) recomputes a
    value before it expires, one caller at a time, the more likely the nearer its
    expiry and the longer it took to compute. With the cache down or slow, compute and
    return the value (logged, never raised). ``timeout`` defaults to the cache's ``TIMEOUT``.
    """
    if isinstance(tags, str):
        raise TypeError(f"cached(tags={tags!r}): pass a list, e.g. tags=[{tags!r}].")
    if not early >= 0:  # also refuses NaN
        raise ValueError(
            f"cached({key!r}, early={early!r}): early is XFetch's beta, a number >= 0 "
            "(0 turns early recomputes off, 1.0 is the usual choice)."
        )
    alias = cache or conf.CACHE
    backend = caches[alias]
    if breaker.is_open(alias):
        return compute()
    client, leasing = _leasing(backend)
    seconds = backend_timeout(backend, timeout)
    lease: Lease | None = None
    try:
        if client is None:
            full_key = _generic_key(backend, key, tags)
            found = _early_unwrap(backend.get(full_key, MISSING), early)
        else:
            # A hit in one round trip on django-redis (epoch and generations held in
            # process); the script answers the rest: misses (leases), early recomputes
            # drawn (with the same draw), clusters.
            found = MISSING
            draw = early_draw(early)
            if leasing is leases:
                found = hits.hit(client, key, tags, seconds, draw)
            if found is MISSING:
                found, lease = leasing.lookup(client, key, tags, seconds, stale, draw)
            else:
                found = client.decode(found)
    except Exception as error:
        breaker.failed(alias, "reading", error)
        return compute()
    breaker.succeeded(alias)
    if found is not MISSING and lease is None:
        return cast(T, found)
    warn_stale_reads(key, compute)  # a miss: with settings.DEBUG, a row read too early?
    started = time.perf_counter()
    try:
        value = compute()
    except BaseException:
        if lease is not None:
            _quietly(alias, "giving a lease back", leasing.release, client, lease)
        raise
    took = time.perf_counter() - started if early else None
    if client is None:
        stored = value if took is None or seconds is None else _Timed.create(value, seconds, took)
        _quietly(alias, "storing", backend.set, full_key, stored, timeout=seconds)
    elif lease is not None:
        _quietly(alias, "storing", leasing.store, client, lease, value, seconds, key, stale, took)
    return value


class _Timed(NamedTuple):
    """A value stored with ``early`` on a cache without Lua: with its expiry and cost."""

    value: Any
    expires: float  # time.time()
    took: float  # seconds to compute

    @classmethod
    def create(cls, value: Any, timeout: float, took: float) -> _Timed:
        return cls(value, time.time() + timeout, took)


def _early_unwrap(found: Any, early: float) -> Any:
    """Return the value of ``found``; MISSING when XFetch draws an early recompute."""
    if not isinstance(found, _Timed):
        return found
    if early and time.time() + found.took * float(early_draw(early)) >= found.expires:
        return MISSING  # no leases here: each caller drawn recomputes
    return found.value


def is_cached(key: str, *, tags: Sequence[str] = (), cache: str | None = None) -> bool:
    """Return whether ``cached(key, ..., tags=tags)`` would be a hit now.

    With the cache down or slow, return ``False`` (what ``cached()`` would do: compute),
    logged at most once a minute, never raised.
    """
    alias = cache or conf.CACHE
    backend = caches[alias]
    if breaker.is_open(alias):
        return False
    client, leasing = _leasing(backend)
    try:
        if client is None:
            found = backend.has_key(_generic_key(backend, key, tags))
        else:
            found = leasing.holds(client, key, tags)
    except Exception as error:
        breaker.failed(alias, "reading", error)
        return False
    breaker.succeeded(alias)
    return bool(found)
