"""The one registry: every hook, rule, counter and user-lifecycle receiver lives here.

Registration is where the work happens: senders are resolved, proxies found,
hooks sorted and the tracked fields collected into one :class:`ModelPlan` per
model class. Django gets one receiver per (signal, model class) that has
something to do, connected with a concrete sender, so models without hooks pay
nothing and Django's fast-delete path stays on for them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from functools import partial
from typing import Any, Literal

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import DEFERRED, Model, signals
from django.dispatch import Signal

from . import tracking
from .db import as_one_save
from .hooktypes import BulkChange, Event, Hook, ModelRef
from .observe import observers, run_hook
from .tracking import EXTRA_FIELDS, LOADS, NO_CHANGES, Tracker, find_field

logger = logging.getLogger("signalhooks")

# -- muting --------------------------------------------------------------------------

#: What ``muted()`` silences in this context: ``None`` (nothing), ``ALL``, or targets.
ALL: frozenset[Any] = frozenset({"__all__"})
muted_targets: ContextVar[frozenset[Any] | None] = ContextVar("signalhooks_muted", default=None)


def _is_muted(targets: frozenset[Any], hook: Hook, sender: type[Model]) -> bool:
    if targets is ALL:
        return True
    return hook.func in targets or hook.model in targets or sender in targets


# -- dispatch ------------------------------------------------------------------------

# Keys in ``instance.__dict__`` of the hooks running for it, one per event. Plain
# strings: hashing an enum member costs a Python-level call on every save.
_RUNNING = {event: f"_signalhooks_running_{event.value}" for event in Event}
_RUNNING_PRE_SAVE = _RUNNING[Event.PRE_SAVE]
_RUNNING_POST_SAVE = _RUNNING[Event.POST_SAVE]


def _run(
    hooks: tuple[Hook, ...],
    kwargs: dict[str, Any],
    instance: Model,
    created: bool,
    running_key: str,
) -> None:
    """Run the hooks whose conditions match, in order.

    ``kwargs`` is what each hook receives. A hook that saves its own instance
    would re-enter here: the hooks already running for this instance and event
    are kept in its ``__dict__`` and skipped by the nested dispatch.
    """
    targets = muted_targets.get()
    raw = kwargs.get("raw", False)
    changes = kwargs["changes"]
    d = instance.__dict__
    outer: Sequence[Hook] | None = d.get(running_key)
    stack = [] if outer is None else list(outer)
    d[running_key] = stack
    try:
        for hook in hooks:
            if raw and not hook.raw:
                continue
            if hook.created is not None and hook.created is not created:
                continue
            if hook.changed:
                if hook.changed.isdisjoint(changes):
                    continue
                if hook.transition is not None and not hook.transition.matches(changes):
                    continue
            if hook.when is not None and not hook.when(instance):
                continue
            if (
                targets is not None
                and hook.kind == "hook"
                and _is_muted(targets, hook, kwargs["sender"])
            ):
                continue
            if outer is not None and hook in outer:
                continue
            if hook.on_commit:
                transaction.on_commit(
                    partial(_run_deferred, hook, dict(kwargs), instance, running_key),
                    using=kwargs["using"],
                )
                continue
            stack.append(hook)
            try:
                run_hook(hook, kwargs) if observers else hook.call(**kwargs)
            finally:
                stack.pop()
    finally:
        if outer is None:
            del d[running_key]
        else:
            d[running_key] = outer


def _run_deferred(hook: Hook, kwargs: dict[str, Any], instance: Model, running_key: str) -> None:
    """Run an ``on_commit`` hook; log its failure instead of stopping the other callbacks."""
    d = instance.__dict__
    outer: Sequence[Hook] | None = d.get(running_key)
    stack = [] if outer is None else list(outer)
    d[running_key] = stack
    stack.append(hook)
    try:
        run_hook(hook, kwargs) if observers else hook.call(**kwargs)
    except Exception:
        logger.exception(
            "signalhooks: on_commit hook %s for %s (pk=%r) failed",
            hook.label,
            type(instance)._meta.label,
            instance.pk,
        )
    finally:
        stack.pop()
        if outer is None:
            del d[running_key]
        else:
            d[running_key] = outer


class ModelPlan:
    """What to run for one model class (a concrete model or one of its proxies)."""

    __slots__ = (
        "model",
        "pre_save",
        "post_save",
        "pre_delete",
        "post_delete",
        "m2m_changed",
        "bulk",
        "tracker",
        "attnames",
        "connected",
        "throughs",
        "wraps",
        "post_save_single",
        "one_save",
    )

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.pre_save: tuple[Hook, ...] = ()
        self.post_save: tuple[Hook, ...] = ()
        self.pre_delete: tuple[Hook, ...] = ()
        self.post_delete: tuple[Hook, ...] = ()
        self.m2m_changed: tuple[Hook, ...] = ()
        #: The hooks that handle bulk operations (``Hook.bulk``), in order.
        self.bulk: tuple[Hook, ...] = ()
        self.tracker: Tracker | None = None
        self.attnames: tuple[tuple[str, str], ...] = tuple(
            (f.attname, f.name) for f in model._meta.concrete_fields if not f.primary_key
        )
        self.connected: set[Signal] = set()
        #: The m2m through models whose signals this plan listens to.
        self.throughs: set[type[Model]] = set()
        #: The one post_save hook, if it has no condition but ``changed=``: run
        #: without the general loop (the most common plan, on the hottest path).
        self.post_save_single: Hook | None = None
        #: What ``tracking.install`` was given for this class (``None``: nothing).
        self.wraps: tuple[Tracker | None, bool] | None = None
        #: Several post_save hooks, a rule or a counter among them: in autocommit their
        #: invalidations (the model's rules, its parents' through counters) make one flush.
        self.one_save = False

    # Receivers. Django calls them with ``signal``, ``sender`` and the signal's
    # keyword arguments; they add ``changes`` and pass the lot on. The save receivers
    # name every argument Django sends: binding a keyword to a named parameter is a
    # pointer comparison, one left over for ``**kwargs`` a string comparison with each
    # parameter name, which made the receiver cost as much as the hook it calls.

    def on_pre_save(
        self,
        signal: Signal,
        sender: type[Model],
        instance: Model,
        raw: bool = False,
        using: str | None = None,
        update_fields: frozenset[str] | None = None,
        **extra: Any,
    ) -> None:
        adding = instance._state.adding
        tracker = self.tracker
        kwargs: dict[str, Any] = {
            "signal": signal,
            "sender": sender,
            "instance": instance,
            "raw": raw,
            "using": using,
            "update_fields": update_fields,
        }
        if extra:
            kwargs.update(extra)
        if update_fields is None:
            kwargs["changes"] = (
                NO_CHANGES if tracker is None else tracker.changes(instance, adding=adding)
            )
            _run(self.pre_save, kwargs, instance, adding, _RUNNING_PRE_SAVE)
            return
        # save(update_fields=[...]) writes only those fields: changes of others are
        # not this save's, as for post_save.
        kwargs["changes"] = (
            NO_CHANGES
            if tracker is None
            else tracker.changes(instance, adding=adding, only=update_fields)
        )
        # It also will not write what a hook assigns outside the list; write that
        # ourselves so the hook's work is never silently dropped. What a hook only
        # read (a deferred field loading, a FileField turning its name into a
        # FieldFile) is not an assignment.
        d = instance.__dict__
        before = {
            attname: d.get(attname, DEFERRED)
            for attname, name in self.attnames
            if attname not in update_fields and name not in update_fields
        }
        outer_loads = d.get(LOADS)
        loads: set[str] = set() if outer_loads is None else outer_loads
        d[LOADS] = loads
        try:
            _run(self.pre_save, kwargs, instance, adding, _RUNNING_PRE_SAVE)
        finally:
            if outer_loads is None:
                del d[LOADS]
        extra = {
            a: value
            for a, old in before.items()
            if (value := d.get(a, DEFERRED)) is not old
            and a not in loads
            and (old is DEFERRED or value != old)
        }
        if extra:
            manager = type(instance)._base_manager.db_manager(kwargs["using"])
            manager.filter(pk=instance.pk).update(**extra)
            if tracker is not None:
                d[EXTRA_FIELDS] = frozenset(extra)

    def on_post_save(
        self,
        signal: Signal,
        sender: type[Model],
        instance: Model,
        created: bool,
        update_fields: frozenset[str] | None = None,
        raw: bool = False,
        using: str | None = None,
        **extra: Any,
    ) -> None:
        tracker = self.tracker
        changes = NO_CHANGES if tracker is None else tracker.saved(instance, created, update_fields)
        hooks = self.post_save
        if not hooks:
            return
        hook = self.post_save_single
        d = instance.__dict__
        if (
            hook is None
            or raw
            or extra
            or _RUNNING_POST_SAVE in d
            or muted_targets.get() is not None
            or observers  # the recorder and the panel time each hook: the general path
        ):
            kwargs = {
                "signal": signal,
                "sender": sender,
                "instance": instance,
                "created": created,
                "update_fields": update_fields,
                "raw": raw,
                "using": using,
                "changes": changes,
                **extra,
            }
            if self.one_save:
                assert using is not None  # Django always sends it
                as_one_save(
                    using, partial(_run, hooks, kwargs, instance, created, _RUNNING_POST_SAVE)
                )
                return
            _run(hooks, kwargs, instance, created, _RUNNING_POST_SAVE)
            return
        if hook.changed and (
            hook.changed.isdisjoint(changes)
            or (hook.transition is not None and not hook.transition.matches(changes))
        ):
            return
        direct = hook.direct
        if direct is not None:
            direct(instance, changes, using, created)  # type: ignore[arg-type]
            return
        d[_RUNNING_POST_SAVE] = hooks  # what _run keeps there: the hooks running
        try:
            # Keywords, not **kwargs: the hook builds its own dict straight from them.
            hook.call(
                signal=signal,
                sender=sender,
                instance=instance,
                created=created,
                update_fields=update_fields,
                raw=raw,
                using=using,
                changes=changes,
            )
        finally:
            del d[_RUNNING_POST_SAVE]

    def _on_delete(self, hooks: tuple[Hook, ...], event: Event, kwargs: dict[str, Any]) -> None:
        instance: Model = kwargs["instance"]
        tracker = self.tracker
        kwargs["changes"] = NO_CHANGES if tracker is None else tracker.changes(instance)
        _run(hooks, kwargs, instance, False, _RUNNING[event])

    def on_pre_delete(self, sender: type[Model], **kwargs: Any) -> None:
        kwargs["sender"] = sender
        self._on_delete(self.pre_delete, Event.PRE_DELETE, kwargs)

    def on_post_delete(self, sender: type[Model], **kwargs: Any) -> None:
        kwargs["sender"] = sender
        self._on_delete(self.post_delete, Event.POST_DELETE, kwargs)


_SIGNALS: dict[str, Signal] = {
    "pre_save": signals.pre_save,
    "post_save": signals.post_save,
    "pre_delete": signals.pre_delete,
    "post_delete": signals.post_delete,
}

#: Events whose hooks multi-table children inherit from their concrete parents. A
#: child's save writes the parent's row too, under ONE signal (sender=the child);
#: a child's delete makes Django delete the parent row with signals of its own
#: (sender=the parent), which run the parent's delete hooks already, once.
_INHERITED = frozenset({Event.PRE_SAVE, Event.POST_SAVE, Event.M2M_CHANGED})


class Registry:
    """All hooks, the fields they track, and the Django receivers they need.

    Every registration updates only the plans of the model it is for (with that
    model's proxies and multi-table children), so registering N hooks is O(N).
    """

    def __init__(self, name: str = "signalhooks") -> None:
        #: The ``dispatch_uid`` of this registry's receivers.
        self.name = name
        self._lock = threading.RLock()
        self._hooks: list[Hook] = []
        self._tracked: list[tuple[ModelRef, tuple[str, ...]]] = []
        # Resolved registrations by the concrete model of their sender.
        self._hooks_by_table: dict[type[Model], list[Hook]] = {}
        self._tracked_by_table: dict[type[Model], list[tuple[str, ...]]] = {}
        self._trackers: dict[tuple[type[Model], frozenset[str]], Tracker] = {}
        self._plans: dict[type[Model], ModelPlan] = {}
        self._m2m_users: dict[type[Model], set[type[Model]]] = {}
        self._order = itertools.count()
        self._ready = False
        #: ``(sender, what)`` for lazy senders that name no installed model.
        self.unresolved: list[tuple[str, str]] = []

    @property
    def ready(self) -> bool:
        """Whether :meth:`setup` ran: signalhooks' ``ready()``, so the app is installed."""
        return self._ready

    # -- registration ----------------------------------------------------------------
    def add(self, hook: Hook) -> Hook:
        """Register ``hook``; return it (its ``model`` and ``order`` filled in)."""
        with self._lock:
            hook.order = next(self._order)
            if self._ready:
                self._resolve(hook)
            self._hooks.append(hook)
            if self._ready:
                self._index_hook(hook)
                if hook.model is not None:
                    self._update(hook.model)
        return hook

    def remove(self, hook: Hook) -> None:
        """Unregister ``hook`` (its receivers go when nothing else needs them)."""
        with self._lock:
            self._hooks.remove(hook)
            if not self._ready:
                return
            if hook.model is None:
                self.unresolved.remove((str(hook.sender), hook.label))
                return
            self._hooks_by_table[_concrete(hook.model)].remove(hook)
            self._update(hook.model)

    def track(self, sender: ModelRef, fields: Sequence[str]) -> None:
        """Track ``fields`` of ``sender`` for :func:`signalhooks.changes`."""
        with self._lock:
            model = self._model_or_none(sender) if self._ready else None
            if model is not None:
                self._validate_fields(model, fields, "track()")
            self._tracked.append((sender, tuple(fields)))
            if self._ready:
                self._index_tracked(sender, tuple(fields))
                if model is not None:
                    self._update(model)

    def setup(self) -> None:
        """Resolve everything registered so far and connect receivers (``ready()``)."""
        with self._lock:
            self._ready = True
            for hook in self._hooks:
                self._resolve(hook)
            for sender, fields in self._tracked:
                model = self._model_or_none(sender)
                if model is not None:
                    self._validate_fields(model, fields, "track()")
            self._rebuild()

    @contextlib.contextmanager
    def isolated(self) -> Iterator[None]:
        """Undo, on exit, every registration made inside the block (for tests)."""
        with self._lock:
            hooks, tracked = list(self._hooks), list(self._tracked)
        try:
            yield
        finally:
            with self._lock:
                self._hooks[:] = hooks
                self._tracked[:] = tracked
                self._rebuild()

    # -- resolution ------------------------------------------------------------------
    @staticmethod
    def _model_or_none(sender: ModelRef) -> type[Model] | None:
        if not isinstance(sender, str):
            return sender
        try:
            return apps.get_model(sender)
        except (LookupError, ValueError):
            return None  # reported by the system check signalhooks.E001

    def _resolve(self, hook: Hook) -> None:
        model = self._model_or_none(hook.sender)
        if model is None:
            return
        # ``changed=`` is the user's: refuse unknown names. ``track`` belongs to the
        # feature that added the hook, which reports bad names in its own check.
        self._validate_fields(model, hook.changed, hook.label)
        hook.model = model
        # ``changed=`` may use an attname (``author_id``); changes are keyed by name.
        hook.changed = frozenset(
            field.name for name in hook.changed if (field := find_field(model, name)) is not None
        )
        if hook.transition is not None:
            (name,) = hook.changed
            hook.transition = dataclasses.replace(hook.transition, field=name)
        if hook.m2m is not None:
            try:
                hook.m2m = hook.m2m.bind(model)
            except ValueError as error:
                raise ImproperlyConfigured(f"{hook.label}: {error}") from None

    @staticmethod
    def _validate_fields(
        model: type[Model], names: Sequence[str] | frozenset[str], what: str
    ) -> None:
        for name in sorted(names):
            if find_field(model, name) is None:
                valid = ", ".join(f.name for f in model._meta.concrete_fields)
                raise ImproperlyConfigured(
                    f"{what}: {model._meta.label} has no field {name!r} to track. "
                    f"Use one of its concrete fields: {valid}."
                )

    def _index_hook(self, hook: Hook) -> None:
        if hook.model is None:
            self.unresolved.append((str(hook.sender), hook.label))
        else:
            self._hooks_by_table.setdefault(_concrete(hook.model), []).append(hook)

    def _index_tracked(self, sender: ModelRef, names: tuple[str, ...]) -> None:
        model = self._model_or_none(sender)
        if model is None:
            self.unresolved.append((str(sender), f"track({sender!r}, ...)"))
        else:
            self._tracked_by_table.setdefault(_concrete(model), []).append(names)

    # -- plans -----------------------------------------------------------------------
    def _rebuild(self) -> None:
        """Recompute every plan from scratch (start-up, and ``isolated()``)."""
        self.unresolved = []
        self._hooks_by_table = {}
        self._tracked_by_table = {}
        for hook in self._hooks:
            self._index_hook(hook)
        for sender, names in self._tracked:
            self._index_tracked(sender, names)
        wanted: set[type[Model]] = set()
        for table in {*self._hooks_by_table, *self._tracked_by_table}:
            wanted.update(_family(table))
        for cls in [c for c in self._plans if c not in wanted]:
            self._drop(self._plans.pop(cls))
        for cls in sorted(wanted, key=lambda m: m._meta.label):
            self._plan(cls)

    def _update(self, model: type[Model]) -> None:
        """Recompute the plans a registration for ``model`` touches, and only those."""
        for cls in _family(_concrete(model)):
            self._plan(cls)

    def _names(self, table: type[Model]) -> set[str]:
        names: set[str] = set()
        for hook in self._hooks_by_table.get(table, ()):
            names.update(hook.changed, hook.track)
        for tracked in self._tracked_by_table.get(table, ()):
            names.update(tracked)
        return names

    def _plan(self, cls: type[Model]) -> None:
        """Bring the plan of ``cls`` (its hooks, tracker, receivers) up to date."""
        chain = {k for k in cls.__mro__ if _is_model(k)}
        own = _concrete(cls)
        # The concrete model first, then the parents whose rows a save also writes.
        tables = [own, *own._meta.get_parent_list()]
        mine = sorted(
            (h for t in tables for h in self._hooks_by_table.get(t, ()) if h.model in chain),
            key=lambda h: h.sort_key,
        )
        by_event = {
            event: tuple(
                h
                for h in mine
                if h.event is event and (event in _INHERITED or _concrete(h.model) is own)  # type: ignore[arg-type]
            )
            for event in Event
        }
        names = set().union(*(self._names(t) for t in tables))
        fields = [f for n in names if (f := find_field(own, n)) is not None]
        tracker: Tracker | None = None
        if fields:
            key = (own, frozenset(f.attname for f in fields))
            tracker = self._trackers.get(key) or self._trackers.setdefault(
                key, Tracker(own, fields)
            )
        plan = self._plans.get(cls)
        if tracker is None and not any(by_event.values()):
            if plan is not None:
                self._drop(self._plans.pop(cls))
            return
        if plan is None:
            plan = self._plans[cls] = ModelPlan(cls)
        for event, hooks in by_event.items():
            setattr(plan, event.value, hooks)
        bulk = {h: None for hooks in by_event.values() for h in hooks if h.bulk is not None}
        plan.bulk = tuple(sorted(bulk, key=lambda h: h.sort_key))
        plan.one_save = len(plan.post_save) > 1 and any(h.bulk is not None for h in plan.post_save)
        single = plan.post_save[0] if len(plan.post_save) == 1 else None
        plan.post_save_single = (
            single
            if single is not None
            and single.created is None
            and single.when is None
            and not single.on_commit
            else None
        )
        wraps = (tracker, bool(plan.pre_save))
        if plan.wraps != wraps:
            if tracker is None and not plan.pre_save:
                tracking.uninstall(cls)
            else:
                tracking.install(cls, tracker)
            plan.wraps = wraps
        plan.tracker = tracker
        self._connect(plan)
        self._connect_m2m(plan)

    def _drop(self, plan: ModelPlan) -> None:
        for signal in plan.connected:
            signal.disconnect(sender=plan.model, dispatch_uid=self.name)
        plan.connected.clear()
        plan.m2m_changed = ()
        self._connect_m2m(plan)
        tracking.uninstall(plan.model)

    def _connect(self, plan: ModelPlan) -> None:
        needs = {
            "pre_save": plan.on_pre_save if plan.pre_save else None,
            "post_save": plan.on_post_save if plan.post_save or plan.tracker else None,
            "pre_delete": plan.on_pre_delete if plan.pre_delete else None,
            "post_delete": plan.on_post_delete if plan.post_delete else None,
        }
        # Receivers are bound methods of the plan, which lives as long as the model
        # has hooks: only a change of what is needed touches Django's signals.
        for name, receiver in needs.items():
            signal = _SIGNALS[name]
            if receiver is None and signal in plan.connected:
                signal.disconnect(sender=plan.model, dispatch_uid=self.name)
                plan.connected.discard(signal)
            elif receiver is not None and signal not in plan.connected:
                signal.connect(receiver, sender=plan.model, weak=False, dispatch_uid=self.name)
                plan.connected.add(signal)

    def _connect_m2m(self, plan: ModelPlan) -> None:
        throughs: set[type[Model]] = {
            h.m2m.through for h in plan.m2m_changed if h.m2m is not None and h.m2m.through
        }
        # Hooks of one relation need its through model; the others (rules, users) all.
        if any(h.m2m is None for h in plan.m2m_changed):
            opts = plan.model._meta
            throughs.update(f.remote_field.through for f in opts.many_to_many)  # type: ignore[misc]
            throughs.update(
                rel.through  # type: ignore[attr-defined]
                for rel in opts.related_objects
                if rel.many_to_many
            )
        for through in plan.throughs - throughs:
            users = self._m2m_users[through]
            users.discard(plan.model)
            if not users:
                del self._m2m_users[through]
                signals.m2m_changed.disconnect(sender=through, dispatch_uid=self.name)
        for through in throughs - plan.throughs:
            users = self._m2m_users.setdefault(through, set())
            if not users:
                signals.m2m_changed.connect(
                    self._on_m2m_changed, sender=through, weak=False, dispatch_uid=self.name
                )
            users.add(plan.model)
        plan.throughs = throughs

    def _on_m2m_changed(self, sender: type[Model], **kwargs: Any) -> None:
        """Run the m2m hooks of both sides of a relation once each, by priority."""
        instance: Model = kwargs["instance"]
        action: str = kwargs["action"]
        # A dict keeps one of each hook (a self relation has one plan for both sides).
        found: dict[Hook, None] = {}
        for cls in (type(instance), kwargs["model"]):
            plan = self._plans.get(cls)
            if plan is not None:
                found.update(
                    (h, None)
                    for h in plan.m2m_changed
                    if h.m2m is None or h.m2m.accepts(sender, action)
                )
        if not found:
            return
        kwargs["sender"] = sender
        kwargs["changes"] = NO_CHANGES
        hooks = tuple(sorted(found, key=lambda h: h.sort_key))
        _run(hooks, kwargs, instance, False, _RUNNING[Event.M2M_CHANGED])

    # -- queries ---------------------------------------------------------------------
    def hooks(self) -> list[Hook]:
        """Return every registered hook, in registration order."""
        with self._lock:
            return list(self._hooks)

    def tracker(self, model: type[Model]) -> Tracker | None:
        plan = self._plans.get(model)
        return None if plan is None else plan.tracker

    def bulk_hooks(self, model: type[Model]) -> tuple[Hook, ...]:
        """Return the hooks of ``model`` that handle bulk operations, in order."""
        plan = self._plans.get(model)
        return () if plan is None else plan.bulk

    def bulk_fields(self, model: type[Model]) -> frozenset[str]:
        """Return the attnames the bulk handlers of ``model`` need for each row."""
        return frozenset().union(*(h.bulk_fields for h in self.bulk_hooks(model)))

    def run_bulk(
        self,
        model: type[Model],
        using: str,
        action: Literal["create", "update", "delete"],
        rows: Sequence[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]],
    ) -> None:
        """Hand rows changed in bulk to the bulk handlers of ``model``."""
        if not rows:
            return
        change = BulkChange(model=model, using=using, action=action, rows=rows)
        hooks = self.bulk_hooks(model)
        if len(hooks) > 1:
            # Several rules (a counter's parent, in autocommit): one flush for them all.
            as_one_save(using, partial(_run_bulk, hooks, change))
        else:
            _run_bulk(hooks, change)


def _run_bulk(hooks: tuple[Hook, ...], change: BulkChange) -> None:
    for hook in hooks:
        assert hook.bulk is not None
        hook.bulk(change)


def _concrete(model: type[Model]) -> type[Model]:
    concrete = model._meta.concrete_model
    assert concrete is not None  # only abstract models have none, and they never get here
    return concrete


def _is_model(candidate: type) -> bool:
    return (
        candidate is not Model
        and issubclass(candidate, Model)
        and not candidate._meta.abstract
        and not candidate._meta.swapped
    )


def _family(table: type[Model]) -> list[type[Model]]:
    """Return ``table`` and every model class deriving from it (proxies, MTI children)."""
    found = [table]
    for cls in found:
        found.extend(c for c in cls.__subclasses__() if _is_model(c) and c not in found)
    return found


registry = Registry()
