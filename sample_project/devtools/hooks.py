"""Record every flush of cache invalidations, and the saves behind it, for the panel.

Public API only. A flush happens after the commit of the transaction whose saves caused
it, in the same thread: the saves and deletes of the blog's rows are remembered per
thread (first of all hooks, so before any rule runs) and handed to the next flush.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.db import DatabaseError

from signalhooks import cache_invalidated, post_delete, post_save

from .models import Invalidation

logger = logging.getLogger("sample_project")

_changes = threading.local()


def _describe(instance: Any, action: str) -> str:
    model = type(instance)._meta.verbose_name
    return f"{model} #{instance.pk} {action} ({str(instance)[:60]})"


@post_save("blog.Post", "blog.Comment", priority=-10_000)
def remember_save(instance: Any, created: bool, **kwargs: Any) -> None:
    pending().append(_describe(instance, "created" if created else "saved"))


@post_delete("blog.Post", "blog.Comment", priority=-10_000)
def remember_delete(instance: Any, **kwargs: Any) -> None:
    pending().append(_describe(instance, "deleted"))


def pending() -> list[str]:
    """Return this thread's saves and deletes not yet credited to a flush."""
    if not hasattr(_changes, "list"):
        _changes.list = []
    changes: list[str] = _changes.list
    return changes


def record(
    sender: str, keys: list[str], tags: list[str], patterns: list[str], **kwargs: Any
) -> None:
    """Store one flush (sender is the cache alias); keep the newest ``Invalidation.KEEP``."""
    changes = pending()
    # Several saves of one row in one transaction read better once each.
    cause = "; ".join(dict.fromkeys(changes)) or "a save outside the blog"
    changes.clear()
    try:
        Invalidation.objects.create(
            cache=sender, keys=keys, tags=tags, patterns=patterns, cause=cause
        )
        old = Invalidation.objects.values_list("pk", flat=True)[Invalidation.KEEP :]
        Invalidation.objects.filter(pk__in=list(old)).delete()
    except DatabaseError:  # the panel is a nicety: never fail the save behind it
        logger.exception("could not record an invalidation for the panel")


cache_invalidated.connect(record, dispatch_uid="devtools.record")
