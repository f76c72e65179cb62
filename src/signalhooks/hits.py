"""``cached()`` hits on django-redis in one GET: the epoch and generations held in process.

Each thread keeps one RESP3 connection of its own to the primary, with Redis' client
tracking on (``CLIENT TRACKING ON NOLOOP``, default mode, on that same connection).
On it the thread reads the epoch and the tags' generations once (:data:`_NUMBERS`,
which also does what the read script does for them: a new epoch after a restart, a
missing generation restarted at the clock) and keeps them; the server then tracks
those keys for the connection and pushes an invalidation message on it whenever one
changes (a tag bump, a new epoch, an expiry, an eviction, ``FLUSHALL``). A hit is
then one ``GET`` of the value's key built from the numbers held, on that connection.

Why a hit never serves a value an invalidation has made unreachable:

* Same connection: Redis writes the invalidation message of a change into the
  connection's output before the reply of any command it runs later. The ``GET``'s
  reply is read after every message sent before it, and a message seen while
  reading it (any: :attr:`_Tracker.changes` moved) throws the reply away; the
  caller then takes the script path, which reads the numbers on the server.
  So a value served was current when the server ran the ``GET``, as with the script.
* A connection that drops (restart, snapshot restore, ``CLIENT KILL``, timeout,
  failover: Sentinel kills the demoted primary's clients) may have lost messages:
  every (re)connect forgets the numbers held, before anything is read on it, and a
  hit whose connection changed under it takes the script path. The first read on a
  new connection runs the epoch check, so a restarted or snapshot-restored server
  (a new ``run_id``) gets a new epoch before any value is read from it.
* ``NOLOOP``: the numbers script's own writes (a new epoch, a restarted generation,
  a lifetime extended) send no message back; it reads each number after writing it,
  so what it returns is tracked and current.
* A demoted primary refuses the numbers script (``#!lua``, a script that may write:
  READONLY), as it refuses the read script.

Misses, leases, ``stale=``, the early recomputes ``early=`` draws and ``is_cached()``
stay on the script path (:mod:`signalhooks.leases`); a hit with ``early=`` also reads
the value's cost and TTL, in the same round trip, to make the draw's decision. Where
tracking is not to be had (a server or proxy without ``HELLO 3`` or ``CLIENT
TRACKING``, redis-py's own client-side cache) every read takes the script path.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from django_redis.client import DefaultClient
from redis.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from .conf import conf
from .epoch import EPOCH_KEY, EPOCH_LUA
from .keys import tag_key
from .leases import MISSING
from .scripts import Script
from .wire import key_maker

#: KEYS: the epoch, then the tags' generation keys. ARGV[1]: the generation lifetime
#: (s). Returns the epoch, then each generation. A generation with less than that
#: lifetime left gets twice that: hits held in process do not refresh it, so it must
#: outlive every value stored under it (a store follows a read script, which does the
#: same), and extending it only now and then spares every tracking client a message
#: per read.
_NUMBERS = Script(
    EPOCH_LUA
    + """
local numbers = {epoch(KEYS[1])}
-- epoch() may have written it, which ends this client's tracking of it (NOLOOP): read again.
redis.call('HGET', KEYS[1], 'epoch')
local lifetime = tonumber(ARGV[1])
for i = 2, #KEYS do
  local ttl = redis.call('TTL', KEYS[i])
  if ttl == -2 then
    redis.call('SET', KEYS[i], string.format('%.0f', now_us()), 'EX', 2 * lifetime)
  elseif ttl < lifetime then
    redis.call('EXPIRE', KEYS[i], 2 * lifetime)
  end
  numbers[i] = redis.call('GET', KEYS[i])
end
return numbers
"""
)

#: At most this many numbers held per thread and server: past it they are all dropped
#: (and read again when used), so tags such as ``author:{pk}`` cannot grow a process.
MAX_NUMBERS = 10_000

_TRACKER = "_signalhooks_tracker"
_UNSEEN: Any = object()


class _Tracker:
    """One thread's tracking connection to one primary and the numbers read on it."""

    __slots__ = ("__weakref__", "changes", "connection", "numbers", "pid")

    def __init__(self, pool: Any) -> None:
        kwargs = dict(pool.connection_kwargs)
        kwargs["protocol"] = 3
        self.connection: Any = pool.connection_class(**kwargs)
        #: Cache key (str) of the epoch or a generation -> its number (bytes).
        self.numbers: dict[str, bytes] = {}
        #: Moves on every invalidation message and every (re)connect.
        self.changes = 0
        self.pid = os.getpid()
        self.connection.register_connect_callback(self._connected)

    def _connected(self, connection: Any) -> None:
        # Messages sent to the connection before may be lost: forget what they kept current.
        self.numbers.clear()
        self.changes += 1
        connection._parser.set_invalidation_push_handler(self._invalidated)
        connection.send_command("CLIENT", "TRACKING", "ON", "NOLOOP", check_health=False)
        connection.read_response()

    def _invalidated(self, message: list[Any]) -> None:
        self.changes += 1
        keys = message[1]
        if keys is None:  # FLUSHALL / FLUSHDB, or the server's tracking table overflowed
            self.numbers.clear()
            return
        numbers = self.numbers
        for key in keys:  # bytes: every read on the connection leaves replies undecoded
            numbers.pop(key.decode(), None)

    def read_numbers(self, names: list[str], lifetime: int) -> None:
        """Read the numbers of ``names`` on the tracking connection (one round trip)."""
        connection = self.connection
        args = (str(len(names)), *names, str(lifetime))
        try:
            connection.send_command("EVALSHA", _NUMBERS.sha, *args, check_health=False)
            found = connection.read_response(disable_decoding=True)
        except NoScriptError:
            # First use on this server (or it restarted): one more round trip, once.
            connection.send_command("EVAL", _NUMBERS.text, *args, check_health=False)
            found = connection.read_response(disable_decoding=True)
        numbers = self.numbers
        if len(numbers) + len(names) > MAX_NUMBERS:
            numbers.clear()  # the server may go on sending messages for them: harmless
        numbers.update(zip(names, found, strict=True))


class _Trackers(threading.local):
    tracker: _Tracker | None = None


def _trackers(pool: Any) -> _Trackers | None:
    """Return the per-thread trackers of ``pool``, or None where tracking is not used."""
    found: _Trackers | None = pool.__dict__.get(_TRACKER, _UNSEEN)
    if found is not _UNSEEN:
        return found
    # redis-py's own client-side cache wraps its connections: the script path there.
    usable = getattr(pool, "cache", None) is None and issubclass(
        pool.connection_class, AbstractConnection
    )
    trackers = _Trackers() if usable else None
    setattr(pool, _TRACKER, trackers)
    return trackers


def _give_up(pool: Any) -> None:
    """Use the script path for ``pool`` from now on (the server cannot track)."""
    setattr(pool, _TRACKER, None)


def hit(
    client: DefaultClient, key: str, tags: Sequence[str], timeout: float | None, draw: str
) -> Any:
    """Return the encoded value cached under ``key`` and ``tags``, or MISSING.

    MISSING: not cached, not known to be current, or drawn for an early recompute
    (``draw``: :func:`signalhooks.leases.early_draw`'s); the caller takes the script path.
    """
    pool = client.get_client(write=True).connection_pool
    trackers = _trackers(pool)
    if trackers is None:
        return MISSING
    tracker = trackers.tracker
    if tracker is None or tracker.pid != os.getpid():
        tracker = trackers.tracker = _Tracker(pool)
    connection = tracker.connection
    make_key = _makers.get(client) or _maker(client)
    if connection._sock is None:
        try:
            connection.connect()
        except ResponseError:
            # No RESP3 (HELLO) or no CLIENT TRACKING here, e.g. a proxy: scripts only.
            connection.disconnect()
            _give_up(pool)
            return MISSING
    try:
        names = [make_key(EPOCH_KEY), *[make_key(tag_key(tag)) for tag in tags]]
        numbers = tracker.numbers
        if not all(name in numbers for name in names):
            lifetime = int(conf.GENERATION_TIMEOUT)
            if timeout is not None:
                lifetime = max(lifetime, int(timeout) + 1)
            tracker.read_numbers(names, lifetime)
        held = [numbers[name] for name in names]
        changes = tracker.changes
        full = make_key(key) + "@" + held[0].decode()
        if tags:
            full += "@" + b".".join(held[1:]).decode()
        if draw == "0":
            connection.send_packed_command(_pack_get(connection, full), check_health=False)
            found = connection.read_response(disable_decoding=True)
        else:
            found = _early_hit(connection, full, draw)
    except RedisConnectionError:
        # Closed since its last use: the script path answers (on a pooled connection,
        # with redis-py's retries), and the next hit starts afresh.
        connection.disconnect()
        return MISSING
    if tracker.changes != changes or found is None:
        return MISSING
    return found


def _early_hit(connection: Any, full: str, draw: str) -> Any:
    """Return the value under ``full``, or MISSING if XFetch draws an early recompute.

    One round trip: the value, the time it took to compute and its TTL, decided as the
    read script decides (which then takes the lease, with the same ``draw``).
    """
    commands = [("GET", full), ("GET", full + "|delta"), ("PTTL", full)]
    connection.send_packed_command(connection.pack_commands(commands), check_health=False)
    try:
        found, delta, ttl = [connection.read_response(disable_decoding=True) for _ in commands]
    except ResponseError:
        connection.disconnect()  # an error reply (WRONGTYPE) left the others unread
        raise
    if delta is not None and ttl > 0 and float(delta) * float(draw) >= ttl:
        return MISSING
    return found


def _pack_get(connection: Any, key: str) -> Any:
    """Return ``GET key`` as ``send_packed_command`` takes it (a list of bytes)."""
    if key.isascii():  # a str's length is then its byte length
        return [f"*2\r\n$3\r\nGET\r\n${len(key)}\r\n{key}\r\n".encode()]
    return connection.pack_command("GET", key)


#: django-redis client -> its key maker (:func:`signalhooks.wire.key_maker`).
_makers: weakref.WeakKeyDictionary[DefaultClient, Callable[[str], str]] = (
    weakref.WeakKeyDictionary()
)


def _maker(client: DefaultClient) -> Callable[[str], str]:
    make = _makers[client] = key_maker(client)
    return make
