"""The decorators: ``pre_save``, ``post_save``, ``pre_delete``, ``post_delete``, ``m2m_changed``.

Plus ``track()``, ``changes()`` and ``muted()``. Every argument is checked here,
at decoration time, so a mistake fails at import rather than on some later save.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from contextvars import Token
from types import TracebackType
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction
from django.apps import apps
from django.db.models import Model
from django.db.models.fields.related_descriptors import ManyToManyDescriptor

from . import arguments
from .arguments import Fields
from .hooktypes import UNSET, Event, Hook, ModelRef
from .m2m import Relation, actions_of, find_through, relation_of
from .registry import ALL, muted_targets, registry

F = TypeVar("F", bound=Callable[..., Any])


def _register(
    event: Event,
    senders: tuple[ModelRef, ...],
    func: Callable[..., Any],
    **options: Any,
) -> None:
    if not callable(func):
        raise TypeError(f"@{event.value}(...) decorates a function, not {func!r}.")
    for sender in senders:
        registry.add(Hook(func=func, event=event, sender=sender, **options))


def _created(decorator: str, created: bool | None) -> None:
    if created is not None and not isinstance(created, bool):
        raise TypeError(f"@{decorator}(created={created!r}): use True, False or None.")


def pre_save(
    *senders: ModelRef,
    created: bool | None = None,
    changed: Fields = None,
    was: Any = UNSET,
    is_now: Any = UNSET,
    was_not: Any = UNSET,
    is_not: Any = UNSET,
    changes_to: Any = UNSET,
    when: Callable[[Any], bool] | None = None,
    raw: bool = False,
    priority: int = 0,
    on_commit: bool = False,
) -> Callable[[F], F]:
    """Run the decorated function before instances of ``senders`` are saved.

    ``created=True`` runs it only for new rows, ``created=False`` only for updates.
    ``was=``, ``is_now=``, ``was_not=``, ``is_not=`` and ``changes_to=`` narrow a
    ``changed=`` field to one transition of its value (old, new).
    """
    if on_commit:
        raise TypeError(
            "@pre_save(..., on_commit=True): a pre_save hook runs before the row is "
            "written, so it cannot wait for the commit. Use @post_save(..., on_commit=True)."
        )
    return _save_hook(
        Event.PRE_SAVE,
        senders,
        created,
        changed,
        {
            "was": was,
            "is_now": is_now,
            "was_not": was_not,
            "is_not": is_not,
            "changes_to": changes_to,
        },
        when=when,
        raw=raw,
        priority=priority,
    )


def post_save(
    *senders: ModelRef,
    created: bool | None = None,
    changed: Fields = None,
    was: Any = UNSET,
    is_now: Any = UNSET,
    was_not: Any = UNSET,
    is_not: Any = UNSET,
    changes_to: Any = UNSET,
    when: Callable[[Any], bool] | None = None,
    on_commit: bool = False,
    raw: bool = False,
    priority: int = 0,
) -> Callable[[F], F]:
    """Run the decorated function after instances of ``senders`` are saved.

    Conditions as for :func:`pre_save`.
    """
    return _save_hook(
        Event.POST_SAVE,
        senders,
        created,
        changed,
        {
            "was": was,
            "is_now": is_now,
            "was_not": was_not,
            "is_not": is_not,
            "changes_to": changes_to,
        },
        when=when,
        on_commit=on_commit,
        raw=raw,
        priority=priority,
    )


def _save_hook(
    event: Event,
    senders: tuple[ModelRef, ...],
    created: bool | None,
    changed: Fields,
    transitions: dict[str, Any],
    **options: Any,
) -> Callable[[F], F]:
    """Check the arguments of ``@pre_save``/``@post_save``; return the decorator."""
    name = event.value
    senders = arguments.senders(name, senders)
    _created(name, created)
    names = arguments.fields(name, senders, changed)
    transition = arguments.transition(name, names, transitions)

    def decorator(func: F) -> F:
        _register(
            event,
            senders,
            func,
            created=created,
            changed=names,
            transition=transition,
            **options,
        )
        return func

    return decorator


def _delete_hook(
    event: Event,
    senders: tuple[ModelRef, ...],
    when: Callable[[Any], bool] | None,
    on_commit: bool,
    priority: int,
    refused: dict[str, Any],
) -> Callable[[F], F]:
    senders = arguments.senders(event.value, senders)
    for name, value in refused.items():
        if value is not None:
            raise TypeError(
                f"@{event.value}(..., {name}={value!r}): delete hooks take no {name}=; "
                f"a deleted row is neither created nor changed. Use when= to filter."
            )
    if on_commit and event is Event.PRE_DELETE:
        raise TypeError(
            "@pre_delete(..., on_commit=True): a pre_delete hook runs before the row is "
            "deleted, so it cannot wait for the commit. Use @post_delete(..., on_commit=True)."
        )

    def decorator(func: F) -> F:
        _register(event, senders, func, when=when, on_commit=on_commit, priority=priority)
        return func

    return decorator


def pre_delete(
    *senders: ModelRef,
    when: Callable[[Any], bool] | None = None,
    priority: int = 0,
    on_commit: bool = False,
    created: bool | None = None,
    changed: Fields = None,
) -> Callable[[F], F]:
    """Run the decorated function before instances of ``senders`` are deleted."""
    return _delete_hook(
        Event.PRE_DELETE,
        senders,
        when,
        on_commit,
        priority,
        {"created": created, "changed": changed},
    )


def post_delete(
    *senders: ModelRef,
    when: Callable[[Any], bool] | None = None,
    on_commit: bool = False,
    priority: int = 0,
    created: bool | None = None,
    changed: Fields = None,
) -> Callable[[F], F]:
    """Run the decorated function after instances of ``senders`` are deleted."""
    return _delete_hook(
        Event.POST_DELETE,
        senders,
        when,
        on_commit,
        priority,
        {"created": created, "changed": changed},
    )


def m2m_changed(
    field: ManyToManyDescriptor[Any] | str,
    *,
    action: str | Iterable[str] | None = None,
    when: Callable[[Any], bool] | None = None,
    on_commit: bool = False,
    priority: int = 0,
) -> Callable[[F], F]:
    """Run the decorated function when the many-to-many relation ``field`` changes.

    ``field`` is a descriptor of either side (``Article.tags``, ``Tag.articles``) or
    ``"app_label.Model.field"``; the hook runs for changes made from either side.
    ``action`` is one of Django's ``m2m_changed`` actions or a list of them (default:
    ``post_add``, ``post_remove``, ``post_clear``). The function gets Django's
    arguments: ``instance`` (whose set changed), ``action``, ``reverse``, ``model``,
    ``pk_set`` and ``using``.
    """
    sender, name = relation_of(field)
    where = sender if isinstance(sender, str) else sender._meta.label
    where = f"{where}.{name}"
    (sender,) = arguments.senders("m2m_changed", (sender,))
    actions = actions_of(where, action)
    model = sender
    if isinstance(model, str) and apps.models_ready:
        model = apps.get_model(model)  # arguments.senders() refused a name that is no model
    # Still a name only while Django loads the models (a declaration in a models.py): the
    # registry checks the relation when it resolves the sender. That moment never comes
    # inside a test run, hence the pragma.
    if not isinstance(model, str):  # pragma: no branch
        find_through(model, name)  # refuse a name that is no relation of the model now
    if on_commit and any(a.startswith("pre_") for a in actions):
        early = sorted(a for a in actions if a.startswith("pre_"))
        raise TypeError(
            f"@m2m_changed({where}, action={early[0]!r}, on_commit=True): a pre_ action "
            "runs before the change is written, so it cannot wait for the commit. Use "
            "the post_ actions with on_commit=True."
        )
    relation = Relation(name=name, actions=actions)

    def decorator(func: F) -> F:
        _register(
            Event.M2M_CHANGED,
            (sender,),
            func,
            m2m=relation,
            when=when,
            on_commit=on_commit,
            priority=priority,
        )
        return func

    return decorator


def track(model: ModelRef, *fields: str) -> None:
    """Track ``fields`` of ``model`` so :func:`changes` reports them."""
    (model,) = arguments.senders("track", (model,))
    if not fields:
        raise TypeError(
            f"track({model!r}): name the fields to track, e.g. track(Article, 'title')."
        )
    arguments.fields("track", (model,), fields)
    registry.track(model, fields)


def changes(instance: Model) -> Mapping[str, tuple[Any, Any]]:
    """Return ``{field: (old, new)}`` for the tracked fields of ``instance`` that differ now."""
    tracker = registry.tracker(type(instance))
    if tracker is None:
        raise ValueError(
            f"changes(): no field of {type(instance)._meta.label} is tracked. "
            f"Call track({type(instance).__name__}, 'field', ...) or use a changed= hook."
        )
    return tracker.changes(instance, adding=instance._state.adding)


class muted:  # noqa: N801 - used like a function, as contextlib's helpers are
    """Silence user hooks inside a block or a decorated function.

    ``muted()`` silences every user hook; ``muted(Article, notify_author)`` only
    the hooks of those models and those hook functions. Cache rules, counters and
    the user-lifecycle signals keep running. The state is context-local, so other
    threads and asyncio tasks are not affected.
    """

    def __init__(self, *targets: ModelRef | Callable[..., Any]) -> None:
        self._targets = targets
        self._tokens: list[Token[frozenset[Any] | None]] = []

    def _resolve(self) -> frozenset[Any]:
        if not self._targets:
            return ALL
        resolved: set[Any] = set()
        for target in self._targets:
            if isinstance(target, str):
                resolved.add(apps.get_model(target))
            elif callable(target):
                resolved.add(target)
            else:
                raise TypeError(
                    f"muted({target!r}): pass models, 'app_label.Model' strings or hook functions."
                )
        return frozenset(resolved)

    def __enter__(self) -> None:
        current = muted_targets.get()
        new = self._resolve()
        if current is not None:
            new = ALL if current is ALL or new is ALL else current | new
        self._tokens.append(muted_targets.set(new))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        muted_targets.reset(self._tokens.pop())

    def __call__(self, func: F) -> F:
        if iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with muted(*self._targets):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with muted(*self._targets):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
