"""signalhooks: model hooks, cache invalidation, related records and user signals for Django."""

from __future__ import annotations

from . import checks  # noqa: F401 - registers signalhooks.E002 even when the app is not installed
from .cache import cached, invalidate, is_cached
from .hooks import (
    changes,
    m2m_changed,
    muted,
    post_delete,
    post_save,
    pre_delete,
    pre_save,
    track,
)
from .invalidation import cache_invalidated
from .loading import cached_from
from .querysets import HooksQuerySet
from .related import counter, recount, total, touch
from .stale_reads import StaleReadWarning
from .users import user_deleted, user_registered, user_updated

__all__ = [
    "HooksQuerySet",
    "StaleReadWarning",
    "cache_invalidated",
    "cached",
    "cached_from",
    "changes",
    "counter",
    "invalidate",
    "is_cached",
    "m2m_changed",
    "muted",
    "post_delete",
    "post_save",
    "pre_delete",
    "pre_save",
    "recount",
    "total",
    "touch",
    "track",
    "user_deleted",
    "user_registered",
    "user_updated",
]
__version__ = "0.1.0"
