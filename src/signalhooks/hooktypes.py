"""The shared types: :class:`Hook`, :class:`Event`, :class:`Transition`, :class:`BulkChange`.

Every module that declares, runs, reports or lists hooks uses these; this module
imports nothing from signalhooks but the leaf :mod:`signalhooks.m2m`, so the registry,
the observers (:mod:`signalhooks.observe`) and everything above them can import it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from asgiref.sync import async_to_sync, iscoroutinefunction
from django.core.checks import CheckMessage
from django.db.models import Model

from .m2m import Relation

__all__ = ["UNSET", "BulkChange", "Event", "Hook", "ModelRef", "Transition"]

ModelRef = type[Model] | str


class Event(enum.StrEnum):
    PRE_SAVE = "pre_save"
    POST_SAVE = "post_save"
    PRE_DELETE = "pre_delete"
    POST_DELETE = "post_delete"
    M2M_CHANGED = "m2m_changed"


@dataclass(frozen=True, slots=True)
class BulkChange:
    """Rows a ``HooksQuerySet`` operation (or a counter) changed, for bulk handlers.

    ``rows`` holds ``(before, after)`` pairs of ``{attname: value}`` with the
    fields in :meth:`Registry.bulk_fields`; ``before`` is ``None`` for created
    rows and ``after`` is ``None`` for deleted ones.
    """

    model: type[Model]
    using: str
    action: Literal["create", "update", "delete"]
    rows: Sequence[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]]


@dataclass(eq=False, slots=True)
class Hook:
    """One thing to run when a model signal fires.

    ``kind`` is ``"hook"`` for user hooks (the only ones :func:`muted` silences);
    library features use their own kind (``"rule"``, ``"counter"``, ``"touch"``,
    ``"user"``) so ``manage.py signalhooks`` can tell them apart.
    """

    func: Callable[..., Any]
    event: Event
    sender: ModelRef
    created: bool | None = None
    changed: frozenset[str] = frozenset()
    when: Callable[[Any], bool] | None = None
    on_commit: bool = False
    raw: bool = False
    priority: int = 0
    kind: str = "hook"
    label: str = ""
    source: str = ""
    #: A condition on the ``(old, new)`` change of the one ``changed=`` field.
    transition: Transition | None = None
    #: For ``m2m_changed`` hooks of one relation: which one, and which actions.
    m2m: Relation | None = None
    #: Extra fields to track for this hook (rules and counters need old values).
    track: frozenset[str] = frozenset()
    #: Handler for bulk queryset operations, and the attnames it needs per row.
    bulk: Callable[[BulkChange], None] | None = None
    bulk_fields: frozenset[str] = frozenset()
    #: Extra validation reported by ``manage.py check`` (cache aliases, templates, …).
    check: Callable[[type[Model]], list[CheckMessage]] | None = None
    #: Extra columns for ``manage.py signalhooks``.
    details: Mapping[str, Any] = field(default_factory=dict)
    #: ``direct(instance, changes, using, created)``: what the one-hook path of a
    #: ``post_save`` calls instead of ``call(**kwargs)``, positionally, without the
    #: re-entrancy guard. For library hooks that never save their own instance (cache
    #: rules): binding eight keywords cost more than the rule's own work.
    direct: Callable[[Any, Mapping[str, tuple[Any, Any]], str, bool], None] | None = None
    # Filled in by the registry.
    model: type[Model] | None = None
    order: int = 0
    call: Callable[..., Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.call = async_to_sync(self.func) if iscoroutinefunction(self.func) else self.func
        if not self.label:
            qualname = getattr(self.func, "__qualname__", None)
            self.label = f"{self.func.__module__}.{qualname}" if qualname else repr(self.func)
        if not self.source:
            code = getattr(self.func, "__code__", None)
            if code is not None:
                self.source = f"{code.co_filename}:{code.co_firstlineno}"

    @property
    def sort_key(self) -> tuple[int, int]:
        return (self.priority, self.order)


#: "Not given" for transition values (``None`` is a value one can compare with).
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()


@dataclass(frozen=True, slots=True)
class Transition:
    """What the ``(old, new)`` change of ``field`` must look like for a hook to run.

    The decorators' ``was=``, ``is_now=``, ``was_not=``, ``is_not=`` and
    ``changes_to=`` (``was_not=X, is_now=X``); every given condition must hold.
    """

    field: str
    was: Any = UNSET
    is_now: Any = UNSET
    was_not: Any = UNSET
    is_not: Any = UNSET

    def matches(self, changes: Mapping[str, tuple[Any, Any]]) -> bool:
        """Return whether the change of ``field`` (which is in ``changes``) matches."""
        old, new = changes[self.field]  # the hook's changed= field: it is there
        return (
            (self.was is UNSET or old == self.was)
            and (self.is_now is UNSET or new == self.is_now)
            and (self.was_not is UNSET or old != self.was_not)
            and (self.is_not is UNSET or new != self.is_not)
        )

    def describe(self) -> dict[str, Any]:
        """Return the given conditions, for ``manage.py signalhooks``."""
        return {
            name: value
            for name in ("was", "is_now", "was_not", "is_not")
            if (value := getattr(self, name)) is not UNSET
        }
