"""The flush's round trip to Redis: commands packed here, sent on a pooled connection.

A flush sends one or two script calls. redis-py's generic ``Pipeline`` spends more
CPU on them than the whole ``save()`` they follow spends in the ORM: it builds a
command stack, packs argument by argument through its encoder, times every step
for its observability hooks and looks up response callbacks. :class:`Pipeline`
keeps what matters of its non-transactional ``execute()``:

* one write of every command, then every reply read before the first error is
  raised, so a connection never goes back to the pool with a reply unread;
* a ``ConnectionError`` or ``TimeoutError`` disconnects and resends, as often as
  the connection's own ``retry`` allows (what redis-py does);
* the connection comes from, and goes back to, the client's pool, so Sentinel
  and replication clients (``client.get_client(write=True)``) reach the primary
  exactly as redis-py's pipeline does. ``send_packed_command`` and
  ``read_response`` are the connection's own: health checks, RESP2/RESP3, the
  error classes (``NoScriptError``, ``ReadOnlyError``) and the hiredis parser
  when it is installed.

It skips redis-py's response callbacks: the flush's commands (EVALSHA, EVAL,
WAIT) have none.

Each thread keeps the connection of its last flush out of the pool (:class:`_Held`)
instead of taking one and giving it back every time, which costs more than the round
trip's own work in redis-py (the pool's lock, its metrics and events, a connect call
and a ``can_read()`` check). What the pool's checks are for is kept:

* a connection is only reused by the process that opened it (after ``os.fork()`` the
  child takes a new one, as redis-py's pool starts anew in a child);
* one that saw any error is disconnected and goes back to the pool;
* one the pool disconnected (``pool.disconnect()``, django-redis' ``close()`` with
  ``CLOSE_CONNECTION``) stays disconnected until the next flush connects it with
  ``connect()``, which is where a Sentinel pool looks up the primary again;
* instead of ``can_read()``, a poll of the socket: every reply of every flush was
  read, so a readable socket means the server closed it (restart, idle ``timeout``,
  ``CLIENT KILL``) and the connection is opened anew before the write;
* health checks (``health_check_interval``) run in ``send_packed_command`` as before;
* the connection goes back to the pool when its thread ends.

A held connection counts against the pool's ``max_connections``: one per thread that
flushes. Pools that block when full (``BlockingConnectionPool``) or have their own
``get_connection``, client-side caching, RESP3 or a credential provider (re-auth on
release) are used the plain way, a connection taken and given back per flush.
"""

from __future__ import annotations

import os
import select
import threading
import weakref
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.base import default_key_func
from django_redis.client import DefaultClient
from redis.connection import ConnectionPool
from redis.exceptions import ResponseError


def pack(commands: list[tuple[str, ...]], encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Return ``commands`` in the Redis protocol, as redis-py packs str arguments."""
    # ASCII text in an ASCII-compatible encoding (what key names nearly always are):
    # a str's length is its byte length, so the whole request is one str, encoded once.
    parts = []
    for args in commands:
        parts.append(f"*{len(args)}\r\n$")
        parts.append("\r\n$".join([f"{len(arg)}\r\n{arg}" for arg in args]))
        parts.append("\r\n")
    text = "".join(parts)
    if encoding in _ASCII_COMPATIBLE and text.isascii():
        return text.encode(encoding, errors)
    return _pack_encoded(commands, encoding, errors)


#: Encodings in which ASCII text is its own bytes (redis-py's default is "utf-8").
_ASCII_COMPATIBLE = frozenset({"utf-8", "utf8", "UTF-8", "latin-1", "latin1", "ascii"})


def _pack_encoded(commands: list[tuple[str, ...]], encoding: str, errors: str) -> bytes:
    parts = []
    for args in commands:
        parts.append(f"*{len(args)}\r\n".encode())
        for arg in args:
            data = arg.encode(encoding, errors)
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class Pipeline:
    """Commands (all arguments str) sent in one write on one pooled connection."""

    __slots__ = ("commands", "redis")

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.commands: list[tuple[str, ...]] = []

    def execute_command(self, *args: str) -> None:
        self.commands.append(args)

    def execute(self) -> list[Any]:
        """Send the commands; return their replies, or raise the first error among them."""
        commands = self.commands
        if not commands:
            return []
        pool = self.redis.connection_pool
        held: _Held | None = pool.__dict__.get(_HELD, _UNSEEN)
        if held is _UNSEEN:
            held = _holder(pool)
        lease = held.lease if held is not None else None
        if lease is not None and lease.pid == os.getpid():
            connection = lease.connection
            sock = connection._sock
            # Every reply was read: readable now means closed by the server.
            if sock is not None and select.select((sock,), (), (), 0)[0]:
                connection.disconnect()
        else:
            # None yet, no holding from this pool, or one inherited through fork().
            connection = pool.get_connection()
            lease = None
            if held is not None:
                lease = held.lease = _Lease(pool, connection)
        try:
            encoder = connection.encoder
            packed = pack(commands, encoder.encoding, encoder.encoding_errors)

            def round_trip() -> list[Any]:
                if connection._sock is None:
                    # connect(), not the implicit one of send_packed_command(): a
                    # Sentinel connection looks the primary up again in connect().
                    connection.connect()
                connection.send_packed_command((packed,))
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(connection.read_response())
                    except ResponseError as error:
                        replies.append(error)
                return replies

            replies: list[Any] = connection.retry.call_with_retry(
                round_trip, lambda error: connection.disconnect()
            )
        except BaseException:
            # Whatever is half sent or half read must not reach the next user.
            connection.disconnect()
            if held is not None and lease is not None:
                held.lease = None
                lease.give_back()
            else:
                pool.release(connection)
            raise
        if lease is None:
            pool.release(connection)
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        return replies


#: The attribute of a connection pool holding its :class:`_Held` (None: not held from).
_HELD = "_signalhooks_held"


class _Held(threading.local):
    """Per thread: the lease of the connection that thread keeps out of one pool."""

    lease: _Lease | None = None


class _Lease:
    """A connection taken from a pool, given back once its thread is gone."""

    __slots__ = ("connection", "pid", "pool")

    def __init__(self, pool: ConnectionPool, connection: Any) -> None:
        # A weak reference: the pool holds its _Held, which holds this.
        self.pool = weakref.ref(pool)
        self.connection = connection
        self.pid = os.getpid()

    def give_back(self, getpid: Callable[[], int] = os.getpid) -> None:
        pool = self.pool()
        # A forked child must not touch its parent's connection (its pool starts anew).
        if pool is not None and self.pid == getpid():
            pool.release(self.connection)

    # Runs when the thread's thread-local data goes, i.e. when the thread ends.
    __del__ = give_back


#: A pool's first flush: whether to hold from it is not decided yet.
_UNSEEN: Any = object()


def _holder(pool: Any) -> _Held | None:
    """Return the :class:`_Held` of ``pool``, or None for a pool used the plain way."""
    kwargs = getattr(pool, "connection_kwargs", {})
    holds = (
        type(pool).get_connection is ConnectionPool.get_connection
        and type(pool).release is ConnectionPool.release
        and getattr(pool, "cache", None) is None
        and str(kwargs.get("protocol", 2)) != "3"
        and kwargs.get("credential_provider") is None
    )
    held = _Held() if holds else None
    setattr(pool, _HELD, held)
    return held


def key_maker(client: DefaultClient) -> Callable[[str], str]:
    """Return ``str(client.make_key(key))`` as a function of ``key``, minus the CacheKey.

    django-redis' ``make_key`` wraps each name in a ``CacheKey`` (a str subclass) that
    the flush turns back into a str. With Django's default key function the name is
    the prefix and version followed by the key: one string concatenation. A client
    class with its own ``make_key`` keeps it.
    """
    if type(client).make_key is not DefaultClient.make_key:
        return lambda key: str(client.make_key(key))
    backend = client._backend
    key_func, prefix, version = backend.key_func, backend.key_prefix, backend.version
    if key_func is default_key_func:
        return f"{prefix}:{version}:".__add__
    return lambda key: str(key_func(key, prefix, version))
