"""``cached_from()``: cache what a computation reads, reading it only after the lookup."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT

from .cache import cached

__all__ = ["cached_from"]

L = TypeVar("L")
T = TypeVar("T")


def cached_from(
    key: str,
    load: Callable[[], L],
    render: Callable[[L], T],
    *,
    tags: Sequence[str] = (),
    timeout: float | None = DEFAULT_TIMEOUT,
    cache: str | None = None,
    stale: bool = False,
    early: float = 0.0,
) -> T:
    """Return ``render(load())`` cached under ``key`` and ``tags``; ``load()`` runs on a miss only.

    ``load`` reads the rows the value is made of, e.g.
    ``lambda: get_object_or_404(Post, slug=slug)``, and runs after the lookup took its
    lease: a change committed after that read cancels the lease, so a value made from
    an old row is never stored. Passing an instance loaded before the lookup into the
    compute instead leaves that window open (``StaleReadWarning`` in ``DEBUG``).
    An exception from ``load`` (``Http404``, ``DoesNotExist``) propagates and stores
    nothing. The keyword arguments are ``cached()``'s.
    """

    def compute() -> T:
        return render(load())

    return cached(key, compute, tags=tags, timeout=timeout, cache=cache, stale=stale, early=early)
