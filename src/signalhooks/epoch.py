"""The epoch: one number in every key ``cached()`` stores; a new one makes them all unreachable.

On django-redis the epoch is a hash ``signalhooks:epoch`` holding the number and
the ``run_id`` of the server that wrote it. Every script that reads or invalidates
starts with :data:`EPOCH_LUA`, so a server that restarted (empty, or restored from
a snapshot that brings back invalidated entries) is noticed on the first call that
reaches it: its ``run_id`` differs, and a new epoch starts above every one used
before. The epoch also moves on retry overflow and on ``manage.py signalhooks
epoch``. Other backends keep a plain number under the same key, without the
restart detection (they cannot report a ``run_id``).
"""

from __future__ import annotations

import time
from typing import Any

#: The cache key (before KEY_PREFIX/VERSION) of the epoch.
EPOCH_KEY = "signalhooks:epoch"

#: Lua functions shared by the scripts. ``epoch(key)`` returns the current epoch,
#: starting a new one if the key is missing or was written by another server
#: process; ``new_epoch(key, old)`` starts one above ``old``. Numbers are
#: microseconds of the server clock, so a restarted count is above an old one.
EPOCH_LUA = """
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function new_epoch(key, run, old)
  local epoch = now_us()
  if old then epoch = math.max(epoch, tonumber(old) + 1) end
  epoch = string.format('%.0f', epoch)
  redis.call('HSET', key, 'epoch', epoch, 'run_id', run)
  return epoch
end
local function run_id()
  return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
end
local function epoch(key)
  local run = run_id()
  local saved = redis.call('HMGET', key, 'epoch', 'run_id')
  if saved[1] and saved[2] == run then return saved[1] end
  return new_epoch(key, run, saved[1])
end
"""


def clock_us() -> int:
    """Return the wall clock in microseconds: where a missing counter restarts."""
    return time.time_ns() // 1000


def generic_epoch(backend: Any) -> Any:
    """Return the epoch of a cache without Lua (LocMem, Django's RedisCache)."""
    found = backend.get(EPOCH_KEY)
    if found is None:
        backend.add(EPOCH_KEY, clock_us(), timeout=None)
        found = backend.get(EPOCH_KEY)
    return found


def bump_generic(backend: Any) -> int:
    """Start a new epoch on a cache without Lua; return it."""
    epoch = max(clock_us(), int(backend.get(EPOCH_KEY) or 0) + 1)
    backend.set(EPOCH_KEY, epoch, timeout=None)
    return epoch
