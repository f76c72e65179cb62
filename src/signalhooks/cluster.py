"""``cached()`` on Redis Cluster (django-valkey's ``ClusterValkeyCache``): leases and restarts.

A cluster script may only touch keys of one hash slot, and the epoch and the tags'
generations live in slots of their own, so a read takes two steps:

1. One single-key script per number (the epoch, then each tag's generation), pipelined:
   one send per node holding any of them, all nodes at once. Each returns the number
   and the ``run_id`` of the node that holds it.
2. One script on the value's node, whose keys (the value, its lease, its stale copy)
   share a slot: they start with a hash tag ``{crc32 of the key}`` that comes before
   the user's key, so braces in a key never move them apart. Same states as
   :mod:`signalhooks.leases`: a hit; a lease (compute and store under it); another
   caller holds the lease (wait, bounded by ``LEASE_WAIT``); the last value with
   ``stale=True``. An invalidation deletes the lease with the value, and a store under
   a lease that is gone is dropped.

Restarts (each node has its own ``run_id``; a node restarted empty or from a snapshot
gets a new one):

* the value's node: a value and a lease carry the ``run_id`` they were written under;
  the scripts ignore (and delete) a value, and refuse a store under a lease, from
  another run, so a snapshot never brings back a value invalidated since;
* a node holding the epoch or a generation: the value's key includes a digest of the
  ``run_id`` of every node its numbers came from, so a number that went back to an
  older one (a snapshot) or restarted never leads to a value stored before.

A hit is two round trips: step 1 (one send to each node holding the epoch or a tag's
generation, in parallel) and step 2 (one send to the value's node).

The flush (:func:`flush`) is two round trips too, whatever the number of keys and
tags: the epoch, then one pipeline of the deletes (grouped by slot) and the tag bumps
(one single-key script each), one send per node, in parallel.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import zlib
from collections.abc import Sequence
from typing import Any

from .conf import conf
from .epoch import EPOCH_KEY, EPOCH_LUA
from .keys import Invalidation, tag_key
from .leases import MISSING, Lease, encode_or_release
from .scripts import Script

#: KEYS[1]: the epoch or a tag's generation. ARGV[1]: its lifetime (s), "" for none.
#: Returns {number, run_id of this node}. A missing number restarts at the clock,
#: above any number used before (the flush's INCR and Django's cache API keep them
#: as plain integers, which this reads as they are).
_NUMBER = Script(
    EPOCH_LUA
    + """
local number = redis.call('GET', KEYS[1])
if not number then
  number = string.format('%.0f', now_us())
  if ARGV[1] == '' then
    redis.call('SET', KEYS[1], number)
  else
    redis.call('SET', KEYS[1], number, 'EX', ARGV[1])
  end
elseif ARGV[1] ~= '' then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return {number, run_id()}
"""
)

#: KEYS: the value, its lease, its stale copy (one slot). ARGV: the lease lifetime
#: (ms), a lease token ("" to only look), "1" for stale, the early recompute draw
#: (see :func:`signalhooks.leases.early_draw`, "0" for none). Values are hashes
#: {run_id, value, delta (ms to compute, "" unknown)}; a lease holds its token
#: followed by the run_id. Returns {1, value} (hit), {2} (a lease), {3, value} (the
#: last value, stale), {4, value} (a hit and a lease: recompute early), {0} (another
#: holds the lease).
_READ = Script(
    EPOCH_LUA
    + """
local run = run_id()
local function take_lease()
  local lease = redis.call('GET', KEYS[2])
  if lease and string.sub(lease, -#run) == run then return false end
  redis.call('SET', KEYS[2], ARGV[2] .. run, 'PX', ARGV[1])
  return true
end
local found = redis.call('HMGET', KEYS[1], 'run_id', 'value', 'delta')
if found[2] then
  if found[1] == run then
    local delta = tonumber(found[3] or '')
    if delta and ARGV[4] ~= '0' and ARGV[2] ~= '' then
      local ttl = redis.call('PTTL', KEYS[1])
      if ttl > 0 and delta * tonumber(ARGV[4]) >= ttl and take_lease() then
        return {4, found[2]}
      end
    end
    return {1, found[2]}
  end
  -- Written before this node restarted (a snapshot): it may have been invalidated since.
  redis.call('DEL', KEYS[1])
end
if ARGV[2] == '' then return {0} end
if take_lease() then return {2} end
if ARGV[3] == '1' then
  local last = redis.call('HMGET', KEYS[3], 'run_id', 'value')
  if last[2] and last[1] == run then return {3, last[2]} end
end
return {0}
"""
)

#: KEYS: the value, its lease, its stale copy. ARGV: the lease token, the timeout (ms,
#: "" for none), the stale copy's timeout (ms, "" for no stale copy), the value, the
#: ms it took to compute ("" unknown); without a value, only give the lease back.
#: Returns 1 if stored, 0 if the lease was cancelled (by an invalidation, or by a
#: restart of this node).
_STORE = Script(
    EPOCH_LUA
    + """
local run = run_id()
if redis.call('GET', KEYS[2]) ~= ARGV[1] .. run then return 0 end
redis.call('DEL', KEYS[2])
if #ARGV < 4 then return 0 end
redis.call('HSET', KEYS[1], 'run_id', run, 'value', ARGV[4], 'delta', ARGV[5])
if ARGV[2] == '' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], 'run_id', run, 'value', ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
return 1
"""
)

#: KEYS[1]: the epoch. Starts a new one, above the clock and the one before; returns
#: {number, run_id of this node}, as :data:`_NUMBER` does.
_NEW_EPOCH = Script(
    EPOCH_LUA
    + """
local old = redis.call('GET', KEYS[1])
local number = now_us()
if old then number = math.max(number, tonumber(old) + 1) end
number = string.format('%.0f', number)
redis.call('SET', KEYS[1], number)
return {number, run_id()}
"""
)

#: KEYS[1]: a tag's generation, bumped if it exists. A missing one needs no bump:
#: :data:`_NUMBER` restarts it at the clock, above any number used before.
_BUMP = Script("""
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCR', KEYS[1]) end
return 0
""")

#: Matches the hash tag :func:`slotted` puts in front of a key.
HASH_TAG_GLOB = "{" + "?" * 8 + "}"


def cluster_client(backend: Any) -> Any | None:
    """Return the django-valkey cluster client of ``backend``, or None for another cache."""
    # Not imported here: without django-valkey there is no such client to find.
    module = sys.modules.get("django_valkey.cluster_cache.client.default")
    client = getattr(backend, "client", None)
    if module is not None and isinstance(client, module.DefaultClusterClient):
        return client
    return None


def slotted(key: str) -> str:
    """Return ``key`` behind a hash tag of its own: what ``key`` is stored under shares a slot."""
    return f"{{{zlib.crc32(key.encode()):08x}}}{key}"


def _run(redis: Any, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
    from valkey.exceptions import NoScriptError

    try:
        return redis.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        # First use on this node (or it restarted): one more round trip, once.
        return redis.eval(script.text, len(keys), *keys, *args)


def _pipelined(
    redis: Any,
    commands: Sequence[Sequence[Any]],
    scripts: Sequence[tuple[Script, str, Sequence[Any]]],
) -> list[Any]:
    """Send ``commands``, then one single-key script per ``(script, key, args)``, as one pipeline.

    The cluster pipeline sends once to each node holding any of the keys, to all
    nodes at once. Returns the scripts' replies.
    """
    from valkey.exceptions import NoScriptError

    def send(by_sha: bool) -> list[Any]:
        pipeline = redis.pipeline()
        for command in commands:
            pipeline.execute_command(*command)
        # The cluster pipeline refuses its evalsha() and eval() methods (scripts of
        # several keys may span nodes); ours have one key each, routed by that key.
        for script, key, args in scripts:
            if by_sha:
                pipeline.execute_command("EVALSHA", script.sha, 1, key, *args)
            else:
                pipeline.execute_command("EVAL", script.text, 1, key, *args)
        return pipeline.execute()[len(commands) :]  # type: ignore[no-any-return]

    try:
        return send(by_sha=True)
    except NoScriptError:
        # A node lacks a script (new or restarted): send the texts. What already ran
        # runs twice, which is harmless (a key deleted twice, a tag bumped twice).
        return send(by_sha=False)


def _numbers(redis: Any, names: Sequence[str], lifetimes: Sequence[str]) -> list[Any]:
    """Run :data:`_NUMBER` on each name: one pipeline, one send per node."""
    scripts = [(_NUMBER, name, [lifetime]) for name, lifetime in zip(names, lifetimes, strict=True)]
    return _pipelined(redis, [], scripts)


def _suffix(replies: Sequence[Any]) -> str:
    """Return what the numbers add to a key: ``@epoch[@generations]@<digest of run_ids>``."""
    numbers = [_text(number) for number, _ in replies]
    runs = hashlib.blake2b(b".".join(run for _, run in replies), digest_size=8).hexdigest()
    parts = [numbers[0], *([".".join(numbers[1:])] if len(numbers) > 1 else []), runs]
    return "@" + "@".join(parts)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _value_key(client: Any, key: str, tags: Sequence[str], timeout: float | None) -> str:
    """Step 1: return the key (prefixed) the value of ``key`` under ``tags`` is stored under."""
    names = [str(client.make_key(EPOCH_KEY)), *(str(client.make_key(tag_key(t))) for t in tags)]
    generation_timeout = int(conf.GENERATION_TIMEOUT)
    if timeout is not None:
        generation_timeout = max(generation_timeout, int(timeout) + 1)
    lifetimes = ["", *[str(generation_timeout)] * len(tags)]
    replies = _numbers(client.get_client(write=True), names, lifetimes)
    return str(client.make_key(slotted(key))) + _suffix(replies)


def flush(client: Any, invalidation: Invalidation, new_epoch: bool) -> None:
    """Invalidate on the cluster: keys, tag bumps and patterns of ``invalidation``.

    Keys and tags take two round trips whatever their number: the epoch (the keys
    ``cached()`` stores for a key include it; none without keys), then one pipeline
    deleting each key with its value and lease under that epoch (which cancels a
    store in progress) and bumping each tag's generation, one send per node, to all
    nodes at once. ``new_epoch`` starts a new epoch in the first step. Patterns are
    scanned on every primary, as django-valkey's ``delete_pattern()`` does.
    """
    redis = client.get_client(write=True)
    doomed: list[str] = []
    if invalidation.keys or new_epoch:
        epoch = _NEW_EPOCH if new_epoch else _NUMBER
        [reply] = _pipelined(redis, [], [(epoch, str(client.make_key(EPOCH_KEY)), [""])])
        suffix = _suffix([reply])
        for key in sorted(invalidation.keys):
            held = str(client.make_key(slotted(key))) + suffix
            doomed += [str(client.make_key(key)), held, held + "|lease"]
    by_slot: dict[int, list[str]] = {}
    for name in doomed:
        by_slot.setdefault(redis.keyslot(name), []).append(name)
    deletes = [("DEL", *names) for names in by_slot.values()]
    bumps = [(_BUMP, str(client.make_key(tag_key(tag))), ()) for tag in sorted(invalidation.tags)]
    if deletes or bumps:
        _pipelined(redis, deletes, bumps)
    itersize = max(int(conf.PATTERN_SCAN_COUNT), 1)
    for pattern in sorted(invalidation.patterns):
        for glob in (pattern, HASH_TAG_GLOB + pattern + "@*"):
            client.delete_pattern(glob, itersize=itersize)


def _slot_keys(client: Any, value_key: str, key: str) -> list[str]:
    return [value_key, value_key + "|lease", str(client.make_key(slotted(key) + "|stale"))]


def holds(client: Any, key: str, tags: Sequence[str]) -> bool:
    """Return whether a value is cached under ``key`` and ``tags`` (taking no lease)."""
    redis = client.get_client(write=True)
    keys = _slot_keys(client, _value_key(client, key, tags, None), key)
    return bool(_run(redis, _READ, keys, [1, "", "0", "0"])[0] == 1)


def lookup(
    client: Any,
    key: str,
    tags: Sequence[str],
    timeout: float | None,
    stale: bool,
    draw: str = "0",
) -> tuple[Any, Lease | None]:
    """Return ``(value, None)`` on a hit, else ``(MISSING, lease or None)``.

    Without a lease the caller computes and does not store: another caller held the
    lease longer than ``LEASE_WAIT``. ``(value, lease)``: a hit whose caller was drawn
    to recompute early (``early``, XFetch) and store under the lease; ``draw`` is
    :func:`early_draw`'s for this call.
    """
    redis = client.get_client(write=True)
    value_key = _value_key(client, key, tags, timeout)
    keys = _slot_keys(client, value_key, key)
    token = os.urandom(8).hex()
    args = [
        max(int(float(conf.LEASE_TIMEOUT) * 1000), 1),
        token,
        "1" if stale else "0",
        draw,
    ]
    deadline = time.monotonic() + float(conf.LEASE_WAIT)
    pause = 0.005
    while True:
        reply = _run(redis, _READ, keys, args)
        state = reply[0]
        if state in (1, 3):
            return client.decode(reply[1]), None
        if state == 2:
            return MISSING, Lease(value_key, token)
        if state == 4:
            return client.decode(reply[1]), Lease(value_key, token)
        if time.monotonic() + pause > deadline:
            return MISSING, None
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def store(
    client: Any,
    lease: Lease,
    value: Any,
    timeout: float | None,
    key: str,
    stale: bool,
    took: float | None = None,
) -> bool:
    """Store ``value`` under ``lease``; return False if an invalidation cancelled it.

    ``took``: the seconds ``value`` took to compute, kept for early recomputes.
    """
    encoded = encode_or_release(client, lease, value, timeout, release)
    if encoded is None:
        return False
    args = [
        lease.token,
        "" if timeout is None else max(int(timeout * 1000), 1),
        max(int(conf.STALE_TIMEOUT * 1000), 1) if stale else "",
        encoded,
        "" if took is None else max(int(took * 1000), 1),
    ]
    keys = _slot_keys(client, lease.key, key)
    return bool(_run(client.get_client(write=True), _STORE, keys, args))


def release(client: Any, lease: Lease) -> None:
    """Give ``lease`` back without a value (the computation failed)."""
    # The stale copy is only touched with a value: the value and its lease are enough.
    keys = [lease.key, lease.key + "|lease"]
    _run(client.get_client(write=True), _STORE, keys, [lease.token, "", ""])
