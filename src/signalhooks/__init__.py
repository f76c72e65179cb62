"""signalhooks: model hooks, cache invalidation, related records and user signals for Django."""

from __future__ import annotations

from .hooks import changes, muted, post_delete, post_save, pre_delete, pre_save, track

__all__ = [
    "changes",
    "muted",
    "post_delete",
    "post_save",
    "pre_delete",
    "pre_save",
    "track",
]
__version__ = "0.1.0"
