"""Send invalidations to a cache: one round trip, failures to the retry store, a signal.

:func:`send` is what a flush calls once per cache alias. With django-redis the
keys (with what ``cached()`` keeps for them under the epoch), the tag bumps and
the first ``SCAN`` page of every pattern go out as one pipeline to the primary:
one round trip, however many of each. Other backends get keys, tags and the
epoch through Django's cache API. Nothing here raises: a cache that is down or
slow opens its circuit breaker (:mod:`signalhooks.breaker`) and the
invalidations go to the database retry store (:mod:`signalhooks.retry`) for
the next successful flush.

With ``SIGNALHOOKS["WAIT_REPLICAS"]`` every flush pipeline ends with Redis
``WAIT``, in the same round trip: a flush that fewer replicas confirmed in time
goes to the retry store like a failed one (a primary that a Sentinel failover
has replaced still acknowledges writes that its resync will discard).

Redis Cluster: the flush script derives the keys it deletes from the epoch it
reads, and one pipeline holds keys of every slot (CROSSSLOT on a cluster), so a
cluster has a flush of its own, :func:`signalhooks.cluster.flush`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.signals import setting_changed
from django.db import DatabaseError
from django.dispatch import Signal
from django_redis.client import DefaultClient, ShardClient
from redis.exceptions import NoScriptError

from . import breaker, cluster, retry
from .conf import conf
from .epoch import EPOCH_KEY, EPOCH_LUA, bump_generic, generic_epoch
from .keys import TAG_PREFIX, Invalidation, tag_key
from .observe import flush_failed, observers
from .scripts import Script
from .wire import Pipeline, key_maker, key_prefix

logger = logging.getLogger("signalhooks")

#: Sent after each successful flush; ``sender`` is the cache alias.
#: Keyword arguments: ``keys``, ``tags``, ``patterns`` (sorted lists of str).
cache_invalidated = Signal()

# -- sending ------------------------------------------------------------------------------


def pending_retries(alias: str) -> int:
    """Return how many failed invalidations of cache ``alias`` wait in the retry store."""
    stored = Invalidation()
    retry.load(alias, stored)
    return stored.size()


def send(alias: str, invalidation: Invalidation, *, new_epoch: bool = False) -> bool:
    """Invalidate on cache ``alias`` now, with what is in the retry store; never raise.

    While the breaker of ``alias`` is open, or when sending fails, ``invalidation``
    goes to the retry store instead and the result is False. ``new_epoch`` also
    starts a new epoch.
    """
    if breaker.is_open(alias):
        _keep(alias, invalidation)
        return False
    payload = invalidation
    stored: list[int] = []
    checking = retry.due(alias)  # the first flush of this process, or after a failure
    if checking:
        payload = invalidation.copy()
        try:
            stored = retry.load(alias, payload)
        except DatabaseError:
            logger.exception("signalhooks: could not read the retry store of cache %r", alias)
            payload, checking = invalidation, False  # look again next time
        if payload.size() > int(conf.RETRY_LIMIT):
            # Too much to send key by key: a new epoch makes everything cached unreachable.
            logger.error(
                "signalhooks: more than RETRY_LIMIT=%s failed invalidations for cache %r; "
                "starting a new epoch instead of sending them",
                conf.RETRY_LIMIT,
                alias,
            )
            payload, new_epoch = invalidation, True
    try:
        by_alias = _targets.by_alias
        target = by_alias.get(alias, _UNSEEN)
        if target is _UNSEEN:
            target = by_alias[alias] = _redis_target(caches[alias])
        if target is not None:
            _send_django_redis(target, payload, new_epoch)
        else:
            backend = caches[alias]
            if (nodes := cluster.cluster_client(backend)) is not None:
                cluster.flush(nodes, payload, new_epoch)
            else:
                _send_generic(alias, backend, payload, new_epoch)
    except Exception as error:
        breaker.failed(alias, "invalidating", error)
        _keep(alias, invalidation)  # what was stored before stays stored
        return False
    breaker.succeeded(alias)
    if checking:
        try:
            retry.delivered(alias, stored)
        except DatabaseError:  # sent twice later: harmless
            logger.exception("signalhooks: could not clear the retry store of cache %r", alias)
    if not cache_invalidated.receivers:
        return True
    responses = cache_invalidated.send_robust(
        sender=alias,
        keys=sorted(payload.keys),
        tags=sorted(payload.tags),
        patterns=sorted(payload.patterns),
    )
    for receiver, response in responses:
        if isinstance(response, Exception):
            # The cache is right; a broken receiver must not fail the commit around it.
            logger.error(
                "signalhooks: cache_invalidated receiver %r failed",
                receiver,
                exc_info=response,
            )
    return True


def _keep(alias: str, invalidation: Invalidation) -> None:
    """Put ``invalidation`` in the retry store of ``alias`` and say so to observers."""
    retry.store(alias, invalidation)
    if observers:
        flush_failed(
            alias,
            sorted(invalidation.keys),
            sorted(invalidation.tags),
            sorted(invalidation.patterns),
        )


def redis_client(backend: Any) -> DefaultClient | None:
    """Return the django-redis client of ``backend`` when one pipeline reaches all its keys."""
    client = getattr(backend, "client", None)
    # The sharded client spreads keys over servers: no single pipeline for them.
    if isinstance(client, DefaultClient) and not isinstance(client, ShardClient):
        return client
    return None


@dataclass(slots=True, frozen=True)
class _RedisTarget:
    """What a flush to one django-redis cache needs, looked up once per thread."""

    client: DefaultClient
    #: The primary's redis-py client (``get_client(write=True)``); its pool is
    #: django-redis' own, shared by every client of the same server.
    redis: Any
    make_key: Callable[[str], str]
    epoch: str
    #: What the flush script puts before each key name to make its cache key ("" when
    #: the flush sends made keys: a client or key function of its own).
    key_prefix: str
    #: The flush call's first arguments, by SHA and with the script's text.
    heads: tuple[tuple[str, ...], tuple[str, ...]]


def _redis_target(backend: Any) -> _RedisTarget | None:
    client = redis_client(backend)
    if client is None:
        return None
    make_key = key_maker(client)
    epoch = make_key(EPOCH_KEY)
    prefix = key_prefix(client) or ""
    tag_prefix = prefix and prefix + TAG_PREFIX

    def head(*call: str) -> tuple[str, ...]:
        return (*call, "1", epoch, prefix, tag_prefix)

    heads = (head("EVALSHA", _FLUSH.sha), head("EVAL", _FLUSH.text))
    return _RedisTarget(client, client.get_client(write=True), make_key, epoch, prefix, heads)


class _Targets(threading.local):
    """Per thread, as ``caches[alias]`` is: cache alias -> its flush target (None: not
    django-redis). ``caches[alias]`` itself costs more than the rest of a flush's
    bookkeeping (asgiref's ``Local`` checks for an event loop on every look-up)."""

    def __init__(self) -> None:
        self.by_alias: dict[str, _RedisTarget | None] = {}


_targets = _Targets()
_UNSEEN: Any = object()


def _forget_targets(*, setting: str, **kwargs: Any) -> None:
    global _targets
    if setting == "CACHES":  # Django builds new backends: every thread looks them up again
        _targets = _Targets()


setting_changed.connect(_forget_targets, dispatch_uid="signalhooks.invalidation.forget_targets")


#: KEYS[1]: the epoch. ARGV: the key prefix and the tag prefix (see _RedisTarget), "1"
#: to start a new epoch, a separator, the number of tags and of keys, then the tags and
#: the keys, each list joined by the separator into one argument (one argument per name
#: when the separator is ""). One argument per list, not per name: the flush packs a
#: handful of arguments whatever it invalidates, and adds no prefix on the client.
#: Each key goes with what ``cached()`` keeps for it under the current epoch: its value
#: and its lease (which cancels the lease). A missing generation needs no bump:
#: ``cached()`` restarts it at the clock, above any number used before.
_FLUSH = Script(
    EPOCH_LUA
    + """
local current = epoch(KEYS[1])
if ARGV[3] == '1' then current = new_epoch(KEYS[1], run_id(), current) end
local sep, at = ARGV[4], 7
local function names(count, prefix)
  local out = {}
  if sep == '' then
    for i = at, at + count - 1 do out[#out + 1] = prefix .. ARGV[i] end
    at = at + count
    return out
  end
  local text, from = ARGV[at], 1
  at = at + 1
  for _ = 1, count do
    local stop = string.find(text, sep, from, true)
    if stop then
      out[#out + 1] = prefix .. string.sub(text, from, stop - 1)
      from = stop + 1
    else
      out[#out + 1] = prefix .. string.sub(text, from)
    end
  end
  return out
end
for _, tag in ipairs(names(tonumber(ARGV[5]), ARGV[2])) do
  if redis.call('EXISTS', tag) == 1 then redis.call('INCR', tag) end
end
local doomed = {}
for _, key in ipairs(names(tonumber(ARGV[6]), ARGV[1])) do
  local value = key .. '@' .. current
  doomed[#doomed + 1] = key
  doomed[#doomed + 1] = value
  doomed[#doomed + 1] = value .. '|lease'
end
if #doomed > 0 then redis.call('DEL', unpack(doomed)) end
"""
)


def _flush_call(
    target: _RedisTarget, by_sha: bool, start: str, tags: Collection[str], keys: Collection[str]
) -> tuple[str, ...]:
    """Return one call of the flush script for ``tags`` and ``keys`` (names, not keys)."""
    if not target.key_prefix:
        make_key = target.make_key
        tags = [make_key(f"{TAG_PREFIX}{tag}") for tag in tags]
        keys = [make_key(key) for key in keys]
    head = target.heads[not by_sha]
    ntags, nkeys = str(len(tags)), str(len(keys))
    tag_list, key_list = "\0".join(tags), "\0".join(keys)
    # As many NULs as separators? ((n or 1) - 1 is n - 1, or 0 for an empty list.)
    if tag_list.count("\0") + key_list.count("\0") != (len(tags) or 1) + (len(keys) or 1) - 2:
        # A name holds a NUL itself: one argument per name instead.
        return (*head, start, "", ntags, nkeys, *tags, *keys)
    return (*head, start, "\0", ntags, nkeys, tag_list, key_list)


#: One SCAN page per pattern, deleting the keys it finds. ARGV: COUNT, then (cursor,
#: pattern) pairs. Returns the next cursors, "0" for a pattern that is done. Each
#: call does what one step of django-redis' delete_pattern() does, bounded by COUNT.
_SCAN_DELETE = Script("""
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
""")

#: Keys per script call, so no single call blocks Redis for long.
_DEL_CHUNK = 1000


class NotReplicated(Exception):
    """Fewer replicas than ``SIGNALHOOKS["WAIT_REPLICAS"]`` confirmed a flush in time.

    Not an outage (the breaker stays closed): the flush is retried, and the next one
    may reach a primary that replicates again, or the replica a failover promoted.
    """


def _execute(pipeline: Pipeline, replicas: int, wait_ms: int) -> list[Any]:
    """Run ``pipeline`` (with ``WAIT`` at its end when ``replicas``); return its replies."""
    if replicas:
        pipeline.execute_command("WAIT", str(replicas), str(wait_ms))
    replies = pipeline.execute()
    if not replicas:
        return replies
    confirmed = int(replies.pop())
    if confirmed < replicas:
        raise NotReplicated(
            f"{confirmed} of WAIT_REPLICAS={replicas} replica(s) confirmed the flush "
            f"within {wait_ms} ms"
        )
    return replies


def _send_django_redis(target: _RedisTarget, invalidation: Invalidation, new_epoch: bool) -> None:
    """Send keys, tag bumps and a first SCAN page per pattern as one pipeline, to the primary.

    A pattern needs more round trips only when its SCAN has more pages, that is
    when the database holds more keys than ``SIGNALHOOKS["PATTERN_SCAN_COUNT"]``.
    """
    redis, keys, tags = target.redis, invalidation.keys, invalidation.tags
    scans: list[tuple[str, str]] = []
    count = ""
    if invalidation.patterns:
        # make_pattern() adds the key prefix and version glob-escaped, as delete_pattern()
        # does; "@*" reaches what cached() stores under a matching key (epoch, generations,
        # lease).
        made = [str(target.client.make_pattern(p)) for p in sorted(invalidation.patterns)]
        scans = [(pattern, "0") for p in made for pattern in (p, p + "@*")]
        count = str(max(int(conf.PATTERN_SCAN_COUNT), 1))
    replicas = max(int(conf.WAIT_REPLICAS), 0)
    # WAIT's timeout 0 would block for ever.
    wait_ms = max(round(float(conf.WAIT_TIMEOUT) * 1000), 1) if replicas else 0

    def first_round(by_sha: bool) -> list[Any]:
        pipeline = Pipeline(redis)
        if keys or tags or new_epoch:
            # The tags and a new epoch go with the first chunk of keys.
            start = "1" if new_epoch else "0"
            first_tags: Collection[str] = tags
            for chunk in _chunks(keys):
                pipeline.execute_command(*_flush_call(target, by_sha, start, first_tags, chunk))
                start, first_tags = "0", ()
        if scans:
            _SCAN_DELETE.queue(pipeline, (), [count, *_scan_args(scans)], by_sha=by_sha)
        return _execute(pipeline, replicas, wait_ms)

    try:
        replies = first_round(by_sha=True)
    except NoScriptError:
        # The server lacks a script (new or restarted): send the texts. What already ran
        # runs twice, which is harmless (a tag bumped twice, a key deleted twice).
        replies = first_round(by_sha=False)
    while scans:
        cursors = [_text(cursor) for cursor in replies[-1]]
        scans = [
            (pattern, cursor)
            for (pattern, _), cursor in zip(scans, cursors, strict=True)
            if cursor != "0"
        ]
        if scans:
            pipeline = Pipeline(redis)
            _SCAN_DELETE.queue(pipeline, (), [count, *_scan_args(scans)], by_sha=True)
            replies = _execute(pipeline, replicas, wait_ms)


def _chunks(keys: set[str]) -> list[Collection[str]]:
    """Return ``keys`` in chunks of at most ``_DEL_CHUNK`` (one chunk, even if empty)."""
    if len(keys) <= _DEL_CHUNK:
        return [keys]
    names = list(keys)
    return [names[at : at + _DEL_CHUNK] for at in range(0, len(names), _DEL_CHUNK)]


def _scan_args(scans: list[tuple[str, str]]) -> list[str]:
    return [arg for pattern, cursor in scans for arg in (cursor, pattern)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _send_generic(alias: str, backend: Any, invalidation: Invalidation, new_epoch: bool) -> None:
    """Invalidate through Django's cache API (built-in Redis, LocMem, sharded django-redis)."""
    if new_epoch:
        bump_generic(backend)
    if invalidation.keys:
        keys = sorted(invalidation.keys)
        epoch = generic_epoch(backend)
        backend.delete_many([*keys, *(f"{key}@{epoch}" for key in keys)])
    for tag in sorted(invalidation.tags):
        # No generation yet: cached() restarts it above any number used before.
        # (django-valkey's incr raises TypeError for a missing key on Redis 7, whose
        # Lua has no ``server`` global.)
        with contextlib.suppress(ValueError, TypeError):
            backend.incr(tag_key(tag))
    if not invalidation.patterns:
        return
    delete_pattern = getattr(backend, "delete_pattern", None)
    if delete_pattern is None:
        # invalidate() refuses such a rule; one declared before ready() is system
        # check signalhooks.E012. Retrying cannot help.
        logger.error(
            "signalhooks: cache %r (%s) cannot delete patterns; skipped %s. "
            "Use django_redis.cache.RedisCache for this alias.",
            alias,
            type(backend).__qualname__,
            sorted(invalidation.patterns),
        )
        return
    for pattern in sorted(invalidation.patterns):
        for glob in (pattern, pattern + "@*"):
            delete_pattern(glob, itersize=max(int(conf.PATTERN_SCAN_COUNT), 1))
