"""Send invalidations to a cache: one round trip, failures kept for a retry, a signal.

:func:`send` is what a flush calls once per cache alias. With django-redis the
keys, the tag bumps and the first ``SCAN`` page of every pattern go out as one
pipeline: one round trip, however many of each. Other backends get keys and
tags through Django's cache API. Nothing here raises: a cache that is down or
slow is logged on the ``signalhooks`` logger and its invalidations are kept,
bounded by ``SIGNALHOOKS["RETRY_LIMIT"]``, for the next flush.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import caches
from django.dispatch import Signal
from django_redis.client import DefaultClient, ShardClient

from .conf import conf

logger = logging.getLogger("signalhooks")

#: Sent after each successful flush; ``sender`` is the cache alias.
#: Keyword arguments: ``keys``, ``tags``, ``patterns`` (sorted lists of str).
cache_invalidated = Signal()

_TAG_PREFIX = "signalhooks:tag:"


def tag_key(tag: str) -> str:
    """Return the cache key holding the generation of ``tag``."""
    return f"{_TAG_PREFIX}{tag}"


@dataclass(slots=True)
class Invalidation:
    """Cache keys to delete, tags to bump and patterns to delete, for one cache."""

    keys: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    patterns: set[str] = field(default_factory=set)


# -- retries ------------------------------------------------------------------------------

_retry_lock = threading.Lock()
#: Failed invalidations per cache alias, oldest first, as ``{(kind, value): None}``.
_retry: dict[str, dict[tuple[str, str], None]] = {}
_KINDS = ("keys", "tags", "patterns")


def _take_retries(alias: str, invalidation: Invalidation) -> dict[tuple[str, str], None]:
    """Move the failed invalidations of ``alias`` into ``invalidation``; return them."""
    with _retry_lock:
        failed = _retry.pop(alias, {})
    for kind, value in failed:
        getattr(invalidation, kind).add(value)
    return failed


def _keep_for_retry(
    alias: str, invalidation: Invalidation, older: dict[tuple[str, str], None]
) -> None:
    limit = max(int(conf.RETRY_LIMIT), 0)
    dropped: list[tuple[str, str]] = []
    with _retry_lock:
        # Oldest first: what failed before, what other threads kept meanwhile, the new.
        kept = _retry[alias] = {**older, **_retry.get(alias, {})}
        for kind in _KINDS:
            for value in sorted(getattr(invalidation, kind)):
                kept.setdefault((kind, value), None)
        while len(kept) > limit:
            oldest = next(iter(kept))
            del kept[oldest]
            dropped.append(oldest)
    if dropped:
        shown = ", ".join(f"{kind[:-1]} {value!r}" for kind, value in dropped[:20])
        logger.error(
            "signalhooks: more than RETRY_LIMIT=%d failed invalidations for cache %r; "
            "dropped the %d oldest, their cache timeouts are the safety net: %s%s",
            limit,
            alias,
            len(dropped),
            shown,
            ", ..." if len(dropped) > 20 else "",
        )


def pending_retries(alias: str) -> int:
    """Return how many failed invalidations of cache ``alias`` wait for the next flush."""
    with _retry_lock:
        return len(_retry.get(alias, ()))


# -- sending ------------------------------------------------------------------------------


def send(alias: str, invalidation: Invalidation) -> None:
    """Invalidate on cache ``alias`` now, with what failed before; never raise."""
    older = _take_retries(alias, invalidation)
    try:
        backend = caches[alias]
        client = _django_redis_client(backend)
        if client is None:
            _send_generic(alias, backend, invalidation)
        else:
            _send_django_redis(client, invalidation)
    except Exception:
        logger.exception(
            "signalhooks: invalidating cache %r failed; kept for the next flush. "
            "keys=%s tags=%s patterns=%s",
            alias,
            sorted(invalidation.keys),
            sorted(invalidation.tags),
            sorted(invalidation.patterns),
        )
        _keep_for_retry(alias, invalidation, older)
        return
    responses = cache_invalidated.send_robust(
        sender=alias,
        keys=sorted(invalidation.keys),
        tags=sorted(invalidation.tags),
        patterns=sorted(invalidation.patterns),
    )
    for receiver, response in responses:
        if isinstance(response, Exception):
            # The cache is right; a broken receiver must not fail the commit around it.
            logger.error(
                "signalhooks: cache_invalidated receiver %r failed",
                receiver,
                exc_info=response,
            )


def _django_redis_client(backend: Any) -> DefaultClient | None:
    """Return the django-redis client of ``backend`` when one pipeline reaches all its keys."""
    client = getattr(backend, "client", None)
    # The sharded client spreads keys over servers: no single pipeline for them.
    if isinstance(client, DefaultClient) and not isinstance(client, ShardClient):
        return client
    return None


#: Bump the generation of each tag in KEYS that exists. A missing generation needs no
#: bump: ``cached()`` restarts it at the clock, above any number used before.
_BUMP_TAGS = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then redis.call('INCR', key) end
end
"""

#: One SCAN page per pattern, deleting the keys it finds. ARGV: COUNT, then (cursor,
#: pattern) pairs. Returns the next cursors, "0" for a pattern that is done. Each
#: call does what one step of django-redis' delete_pattern() does, bounded by COUNT.
_SCAN_DELETE = """
local cursors = {}
for i = 2, #ARGV, 2 do
  local page = redis.call('SCAN', ARGV[i], 'MATCH', ARGV[i + 1], 'COUNT', ARGV[1])
  local found = page[2]
  for j = 1, #found, 500 do
    redis.call('DEL', unpack(found, j, math.min(j + 499, #found)))
  end
  cursors[#cursors + 1] = page[1]
end
return cursors
"""

#: Keys per DEL command, so no single command blocks Redis for long.
_DEL_CHUNK = 1000


def _send_django_redis(client: DefaultClient, invalidation: Invalidation) -> None:
    """Send keys, tag bumps and a first SCAN page per pattern as one pipeline.

    A pattern needs more round trips only when its SCAN has more pages, that is
    when the database holds more keys than ``SIGNALHOOKS["PATTERN_SCAN_COUNT"]``.
    """
    redis = client.get_client(write=True)
    keys = [str(client.make_key(key)) for key in sorted(invalidation.keys)]
    tags = [str(client.make_key(tag_key(tag))) for tag in sorted(invalidation.tags)]
    # make_pattern() adds the key prefix and version glob-escaped, as delete_pattern() does.
    scans = [(str(client.make_pattern(p)), "0") for p in sorted(invalidation.patterns)]
    count = max(int(conf.PATTERN_SCAN_COUNT), 1)
    pipeline = redis.pipeline(transaction=False)
    for start in range(0, len(keys), _DEL_CHUNK):
        pipeline.delete(*keys[start : start + _DEL_CHUNK])
    if tags:
        pipeline.eval(_BUMP_TAGS, len(tags), *tags)
    while True:
        if scans:
            args = [arg for pattern, cursor in scans for arg in (cursor, pattern)]
            pipeline.eval(_SCAN_DELETE, 0, count, *args)
        replies = pipeline.execute()
        if not scans:
            return
        cursors = [_text(cursor) for cursor in replies[-1]]
        scans = [
            (pattern, cursor)
            for (pattern, _), cursor in zip(scans, cursors, strict=True)
            if cursor != "0"
        ]
        pipeline = redis.pipeline(transaction=False)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _send_generic(alias: str, backend: Any, invalidation: Invalidation) -> None:
    """Invalidate through Django's cache API (built-in Redis, LocMem, sharded django-redis)."""
    if invalidation.keys:
        backend.delete_many(sorted(invalidation.keys))
    for tag in sorted(invalidation.tags):
        # No generation yet: cached() restarts it above any number used before.
        with contextlib.suppress(ValueError):
            backend.incr(tag_key(tag))
    if not invalidation.patterns:
        return
    delete_pattern = getattr(backend, "delete_pattern", None)
    if delete_pattern is None:
        # System check signalhooks.E012 reports such a rule; retrying cannot help.
        logger.error(
            "signalhooks: cache %r (%s) cannot delete patterns; skipped %s. "
            "Use django_redis.cache.RedisCache for this alias.",
            alias,
            type(backend).__qualname__,
            sorted(invalidation.patterns),
        )
        return
    for pattern in sorted(invalidation.patterns):
        delete_pattern(pattern, itersize=max(int(conf.PATTERN_SCAN_COUNT), 1))
