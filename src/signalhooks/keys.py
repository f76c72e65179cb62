"""Cache key names and :class:`Invalidation`: the low-level names every cache module shares.

This module imports nothing from signalhooks, so the flush (:mod:`signalhooks.invalidation`),
the backends (:mod:`signalhooks.leases`, :mod:`signalhooks.cluster`, :mod:`signalhooks.hits`)
and the retry store (:mod:`signalhooks.retry`) can all import it without a circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TAG_PREFIX", "Invalidation", "tag_key"]

#: What every tag generation key starts with (the flush script builds the names itself).
TAG_PREFIX = "signalhooks:tag:"


def tag_key(tag: str) -> str:
    """Return the cache key holding the generation of ``tag``."""
    return f"{TAG_PREFIX}{tag}"


@dataclass(slots=True)
class Invalidation:
    """Cache keys to delete, tags to bump and patterns to delete, for one cache."""

    keys: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    patterns: set[str] = field(default_factory=set)

    def size(self) -> int:
        return len(self.keys) + len(self.tags) + len(self.patterns)

    def copy(self) -> Invalidation:
        return Invalidation(set(self.keys), set(self.tags), set(self.patterns))
