from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from .models import Invalidation


def recent_invalidations() -> list[Invalidation]:
    return list(Invalidation.objects.all()[:8])


def devtools(request: HttpRequest) -> dict[str, Any]:
    if settings.CACHE_IS_REDIS:
        label = f"Redis at {settings.REDIS_URL} (key prefix {settings.CACHE_KEY_PREFIX!r})"
    else:
        label = "in-process memory (no Redis answered; see the console)"
    # A callable: the query runs only on pages that show the panel.
    return {
        "devtools": settings.DEVTOOLS,
        "recent_invalidations": recent_invalidations,
        "cache_label": label,
    }
