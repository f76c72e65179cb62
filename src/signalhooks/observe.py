"""Observation points: what signalhooks did, for ``signalhooks.testing`` and the panel.

The modules that do the work call in here behind one guard, ``if observers:``, so when
nobody listens a save pays one truth test of an empty list and nothing else.
Invalidations are not reported here: the ``cache_invalidated`` signal already says
what each flush deleted. Observers are process-wide (every thread reports to every
observer); an observer that wants one thread's work keeps what it needs to tell.

This module imports nothing from signalhooks: every other module may import it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from django.db.models import Model

    from .hooktypes import Hook


class Observer(Protocol):
    """Receives what signalhooks did; see :func:`observing`."""

    def hook_ran(self, hook: Hook, kwargs: Mapping[str, Any], seconds: float) -> None:
        """Record that ``hook`` ran with ``kwargs`` and took ``seconds``."""

    def counters_moved(
        self, parent: type[Model], changes: Mapping[tuple[tuple[str, int], ...], Sequence[Any]]
    ) -> None:
        """Record counter changes: ``{((field, delta), ...): [parent key, ...]}``."""

    def mail_queued(self, user_pk: Any) -> None:
        """Record that the welcome mail of ``user_pk`` was queued."""

    def flush_failed(
        self, cache: str, keys: Sequence[str], tags: Sequence[str], patterns: Sequence[str]
    ) -> None:
        """Record that invalidating on ``cache`` failed; the retry store keeps the rest."""


#: Who listens. Mutated in place (never rebound): the modules that report hold it.
observers: list[Observer] = []


def add(observer: Observer) -> None:
    """Start reporting to ``observer``."""
    observers.append(observer)


def remove(observer: Observer) -> None:
    """Stop reporting to ``observer``."""
    observers.remove(observer)


def run_hook(hook: Hook, kwargs: dict[str, Any]) -> None:
    """Run ``hook`` as the registry would, timed, and report it (also when it raised)."""
    start = time.perf_counter()
    try:
        hook.call(**kwargs)
    finally:
        seconds = time.perf_counter() - start
        for observer in tuple(observers):
            observer.hook_ran(hook, kwargs, seconds)


def counters_moved(
    parent: type[Model], changes: Mapping[tuple[tuple[str, int], ...], Sequence[Any]]
) -> None:
    """Report one counter update of ``parent`` rows (touch-only groups are left out)."""
    moved = {change: keys for change, keys in changes.items() if change}
    if moved:
        for observer in tuple(observers):
            observer.counters_moved(parent, moved)


def mail_queued(user_pk: Any) -> None:
    """Report that the welcome mail of ``user_pk`` was queued."""
    for observer in tuple(observers):
        observer.mail_queued(user_pk)


def flush_failed(
    cache: str, keys: Sequence[str], tags: Sequence[str], patterns: Sequence[str]
) -> None:
    """Report that invalidating ``keys``, ``tags`` and ``patterns`` on ``cache`` failed."""
    for observer in tuple(observers):
        observer.flush_failed(cache, keys, tags, patterns)
