"""``cached()`` on django-redis: one script per read, leases against stale sets and stampedes.

The read script (one round trip) reads the epoch and the tags' generations, builds
the value's key from them and returns the value. On a miss it hands out a *lease*
(a token under ``<key>|lease``, as Facebook's memcache does): the holder computes
and stores under the lease; an invalidation deletes the lease with the key, and a
store under a lease that is gone is dropped, so a value computed from rows read
before a commit is never stored after that commit's invalidation. Callers that
miss while another holds the lease wait for its value (bounded by
``LEASE_WAIT``), or take the key's last value with ``stale=True``.

Early recompute (``early=``, XFetch: Vattani et al., VLDB 2015): a value stored
with ``early`` keeps how long it took to compute under ``<key>|delta``. On a hit
the script recomputes early with probability rising as the expiry nears, weighed
by that time: it hands the caller the value *and* a lease when
``delta * early * -ln(random) >= the key's remaining TTL``. The random draw comes
from the client (Lua's own generator is not random per call), and the lease makes
it one early recompute at a time; the others keep getting the value.

Everything goes to the primary (``get_client(write=True)``): a lagging replica
would hand out old generations, epochs and leases.

Redis Cluster has its own scripts (:mod:`signalhooks.cluster`): these build the
value key from the epoch and generation keys they read, which live in other slots.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django_redis.client import DefaultClient

from .conf import conf
from .epoch import EPOCH_KEY, EPOCH_LUA
from .keys import tag_key
from .scripts import Script

#: KEYS: the epoch, then the tags' generation keys. ARGV: the key (prefixed), the
#: generation lifetime (s; at least that is left after a read), the lease lifetime
#: (ms), a lease token ("" to only look), "1" for stale, the early recompute draw
#: (``early * -ln(random)``, "0" for none).
#: Returns {1, value} (hit), {2, key} (a lease: compute and store), {3, value}
#: (the last value, stale), {4, value, key} (a hit and a lease: recompute early),
#: {0} (another caller holds the lease: wait).
_READ = (
    EPOCH_LUA
    + """
local key = ARGV[1] .. '@' .. epoch(KEYS[1])
if #KEYS > 1 then
  local generations = {}
  for i = 2, #KEYS do
    local generation = redis.call('GET', KEYS[i])
    if generation then
      -- Twice the lifetime once less than it is left: it outlives every value stored
      -- under it, and clients holding it (signalhooks.hits) hear of a change rarely.
      if redis.call('TTL', KEYS[i]) < tonumber(ARGV[2]) then
        redis.call('EXPIRE', KEYS[i], 2 * ARGV[2])
      end
    else
      -- Gone (never set, expired, evicted): restart at the clock, above any number
      -- an older value could be stored under.
      generation = string.format('%.0f', now_us())
      redis.call('SET', KEYS[i], generation, 'EX', 2 * ARGV[2])
    end
    generations[#generations + 1] = generation
  end
  key = key .. '@' .. table.concat(generations, '.')
end
local value = redis.call('GET', key)
if value then
  if ARGV[6] ~= '0' and ARGV[4] ~= '' then
    local delta = redis.call('GET', key .. '|delta')
    local ttl = redis.call('PTTL', key)
    if delta and ttl > 0 and tonumber(delta) * tonumber(ARGV[6]) >= ttl
        and redis.call('SET', key .. '|lease', ARGV[4], 'NX', 'PX', ARGV[3]) then
      return {4, value, key}
    end
  end
  return {1, value}
end
if ARGV[4] == '' then return {0} end
if redis.call('SET', key .. '|lease', ARGV[4], 'NX', 'PX', ARGV[3]) then return {2, key} end
if ARGV[5] == '1' then
  value = redis.call('GET', ARGV[1] .. '|stale')
  if value then return {3, value} end
end
return {0}
"""
)

#: ARGV: the value key, the lease token, the timeout (ms, "" for none), the stale
#: copy's key ("" for none) and timeout (ms), the value, and the time the value took
#: to compute (ms, for ``early``; "" for none); without a value, only give the lease
#: back. Returns 1 if stored, 0 if the lease was cancelled.
_STORE = """
local lease = ARGV[1] .. '|lease'
if redis.call('GET', lease) ~= ARGV[2] then return 0 end
redis.call('DEL', lease)
if #ARGV < 6 then return 0 end
if ARGV[3] == '' then
  redis.call('SET', ARGV[1], ARGV[6])
else
  redis.call('SET', ARGV[1], ARGV[6], 'PX', ARGV[3])
  if ARGV[7] ~= '' then redis.call('SET', ARGV[1] .. '|delta', ARGV[7], 'PX', ARGV[3]) end
end
if ARGV[4] ~= '' then redis.call('SET', ARGV[4], ARGV[6], 'PX', ARGV[5]) end
return 1
"""


read_script = Script(_READ)
store_script = Script(_STORE)

#: What lookup() returns when the caller must compute.
MISSING: Any = object()


class Lease:
    """The right to store the value of one key, until an invalidation cancels it."""

    __slots__ = ("key", "token")

    def __init__(self, key: str, token: str) -> None:
        self.key = key
        self.token = token


def _read_arguments(
    client: DefaultClient, key: str, tags: Sequence[str], timeout: float | None, token: str
) -> tuple[list[str], list[Any]]:
    keys = [str(client.make_key(EPOCH_KEY)), *(str(client.make_key(tag_key(t))) for t in tags)]
    generation_timeout = int(conf.GENERATION_TIMEOUT)
    if timeout is not None:
        generation_timeout = max(generation_timeout, int(timeout) + 1)
    args = [
        str(client.make_key(key)),
        generation_timeout,
        max(int(float(conf.LEASE_TIMEOUT) * 1000), 1),
        token,
    ]
    return keys, args


def holds(client: DefaultClient, key: str, tags: Sequence[str]) -> bool:
    """Return whether a value is cached under ``key`` and ``tags`` (taking no lease)."""
    keys, args = _read_arguments(client, key, tags, None, "")
    state = read_script(client.get_client(write=True), keys, [*args, "0", "0"])[0]
    return bool(state == 1)


def early_draw(early: float) -> str:
    """Return XFetch's ``early * -ln(random)`` as the read script takes it ("0": off)."""
    if not early:
        return "0"
    return repr(-early * math.log(1.0 - random.random()))  # noqa: S311 (not for secrets)


def lookup(
    client: DefaultClient,
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
    token = os.urandom(8).hex()
    keys, args = _read_arguments(client, key, tags, timeout, token)
    args += ["1" if stale else "0", draw]
    deadline = time.monotonic() + float(conf.LEASE_WAIT)
    pause = 0.005
    while True:
        reply = read_script(redis, keys, args)
        state = reply[0]
        if state in (1, 3):
            return client.decode(reply[1]), None
        if state == 2:
            return MISSING, Lease(reply[1].decode(), token)
        if state == 4:
            return client.decode(reply[1]), Lease(reply[2].decode(), token)
        if time.monotonic() + pause > deadline:
            return MISSING, None
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def store(
    client: DefaultClient,
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
        lease.key,
        lease.token,
        "" if timeout is None else max(int(timeout * 1000), 1),
        str(client.make_key(key)) + "|stale" if stale else "",
        max(int(conf.STALE_TIMEOUT * 1000), 1),
        encoded,
        "" if took is None else max(int(took * 1000), 1),
    ]
    return bool(store_script(client.get_client(write=True), (), args))


def encode_or_release(
    client: Any,
    lease: Lease,
    value: Any,
    timeout: float | None,
    give_back: Callable[[Any, Lease], None],
) -> Any:
    """Return ``value`` encoded for a store under ``lease``, or None if it is not stored.

    Django's timeout of 0 means "do not cache", and a value that cannot be encoded never
    comes: either way ``give_back`` returns the lease, so the others need not wait for it.
    """
    if timeout is not None and timeout <= 0:
        give_back(client, lease)
        return None
    try:
        return client.encode(value)
    except Exception:
        give_back(client, lease)
        raise


def release(client: DefaultClient, lease: Lease) -> None:
    """Give ``lease`` back without a value (the computation failed)."""
    store_script(client.get_client(write=True), (), [lease.key, lease.token, "", "", ""])


def backend_timeout(backend: Any, timeout: float | None) -> float | None:
    """Return ``timeout`` in seconds, the cache's own for ``DEFAULT_TIMEOUT``."""
    if timeout is DEFAULT_TIMEOUT:
        return backend.default_timeout  # type: ignore[no-any-return]
    return timeout
