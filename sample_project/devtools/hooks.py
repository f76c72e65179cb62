"""Record every flush of cache invalidations for the panel (public API only)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError

from signalhooks import cache_invalidated

from .models import Invalidation

logger = logging.getLogger("sample_project")


def record(
    sender: str, keys: list[str], tags: list[str], patterns: list[str], **kwargs: Any
) -> None:
    """Store one flush (sender is the cache alias); keep the newest ``Invalidation.KEEP``."""
    try:
        Invalidation.objects.create(cache=sender, keys=keys, tags=tags, patterns=patterns)
        old = Invalidation.objects.values_list("pk", flat=True)[Invalidation.KEEP :]
        Invalidation.objects.filter(pk__in=list(old)).delete()
    except DatabaseError:  # the panel is a nicety: never fail the save behind it
        logger.exception("could not record an invalidation for the panel")


cache_invalidated.connect(record, dispatch_uid="devtools.record")
