"""The flush's round trip to Redis: one write on a pooled connection, every reply read.

A flush sends one or two script calls. redis-py's generic ``Pipeline`` spends more
CPU on them than the whole ``save()`` they follow spends in the ORM: it builds a
command stack, times every step for its observability hooks and looks up response
callbacks. :class:`Pipeline` keeps what matters of its non-transactional
``execute()`` and leaves the protocol to redis-py's connection and hiredis:

* the commands are packed by hiredis (``hiredis.pack_command``, C) when the
  connection encodes as UTF-8, by the connection's own ``pack_commands`` otherwise,
  and go out in one write;
* every reply is read before the first error is raised, so a connection never goes
  back to the pool with a reply unread: by redis-py's ``read_response`` (hiredis'
  reader inside redis-py), or on the hot path below by a ``hiredis.Reader`` of the
  flush's own; error replies are redis-py's classes (``NoScriptError``,
  ``ReadOnlyError`` …) either way;
* a ``ConnectionError`` or ``TimeoutError`` disconnects and resends, as often as
  the connection's own ``retry`` allows (what redis-py does);
* the connection comes from, and goes back to, the client's pool, so Sentinel
  and replication clients (``client.get_client(write=True)``) reach the primary
  exactly as redis-py's pipeline does.

It skips redis-py's response callbacks: the flush's commands (EVALSHA, EVAL,
WAIT) have none.

The hot path — the thread's own held connection, open, without health checks, of a
class that keeps redis-py's own send and read (not Sentinel's, which turns a READONLY
reply into a disconnect and a ``ConnectionError`` so the retry reaches the new
primary) — writes the packed request with one ``sendall`` on the connection's socket
and feeds what comes back to a ``hiredis.Reader`` (:func:`exchange`). redis-py's
``send_packed_command`` and ``read_response`` cost about 10k CPU instructions more
per flush (``python -m benchmarks.compare_wire``), which is what keeps the autocommit
rule save within 1.15× a plain save. What redis-py guarantees there is kept: socket
timeouts raise its ``TimeoutError``, other socket errors and a closed connection its
``ConnectionError`` (so the retry and the disconnect behave alike), a push message is
skipped, and bytes beyond the replies disconnect. Everywhere else redis-py sends and
reads.

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
* instead of ``can_read()`` before the write: a closed connection found by the write
  or the read (restart, idle ``timeout``, ``CLIENT KILL``: the server closed it since
  the last flush) is opened anew and the request sent again, under the connection's
  ``retry`` (a timeout is not retried there: a hung server is not waited for twice);
* health checks (``health_check_interval``) run in ``send_packed_command`` as before;
* the connection goes back to the pool when its thread ends.

A held connection counts against the pool's ``max_connections``: one per thread that
flushes. Pools that block when full (``BlockingConnectionPool``) or have their own
``get_connection``, client-side caching, RESP3 or a credential provider (re-auth on
release) are used the plain way, a connection taken and given back per flush.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

import hiredis
from django.core.cache.backends.base import default_key_func
from django_redis.client import DefaultClient
from redis.connection import Connection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Encodings in which hiredis' packing (str arguments as UTF-8) is the connection's.
_UTF8 = frozenset({"utf-8", "utf8", "UTF-8", "utf_8"})


def pack(connection: Any, commands: list[tuple[str, ...]]) -> tuple[bytes]:
    """Return ``commands`` in the Redis protocol as one buffer, as ``connection`` packs them."""
    encoder = connection.encoder
    if encoder.encoding in _UTF8 and encoder.encoding_errors == "strict":
        # (hiredis' stub types its argument as a tuple of one item: any length works.)
        return (b"".join([hiredis.pack_command(args) for args in commands]),)  # type: ignore[arg-type]
    # One buffer even where redis-py would cut a long request in pieces: one write.
    return (b"".join(connection.pack_commands(commands)),)


def _round_trip(connection: Any, packed: tuple[bytes], count: int) -> list[Any]:
    """Send ``packed``; return its ``count`` replies, error replies among them, not raised."""
    connection.send_packed_command(packed)
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(connection.read_response())
        except ResponseError as error:
            replies.append(error)
    return replies


#: What a hiredis reader returns while a reply is incomplete (False is a RESP3 reply).
_MORE: Any = object()
#: Bytes asked of the socket per read (a flush's replies fit in one).
_READ_SIZE = 65536


def exchange(sock: Any, reader: Any, packed: bytes, count: int) -> list[Any]:
    """Send ``packed`` on ``sock``, a connection's socket; read ``count`` replies with ``reader``.

    The hot path's round trip: hiredis parses, the flush only moves the bytes, raising
    what redis-py raises (``TimeoutError``, ``ConnectionError``) so the retry and the
    disconnect behave alike. Error replies come back as values, of redis-py's classes;
    a push message (RESP3, out of band) is no reply and is skipped; bytes beyond the
    replies disconnect.
    """
    try:
        sock.sendall(packed)
        replies: list[Any] = []
        while len(replies) < count:
            reply = reader.gets()
            if reply is _MORE:
                chunk = sock.recv(_READ_SIZE)
                if not chunk:
                    raise RedisConnectionError("Connection closed by server.")
                reader.feed(chunk)
            elif type(reply) is not hiredis.PushNotification:
                replies.append(reply)
    except TimeoutError as error:  # socket.timeout
        raise RedisTimeoutError("Timeout on the socket") from error
    except OSError as error:
        raise RedisConnectionError(f"Error on the socket: {error}") from error
    if reader.has_data():
        raise InvalidResponse("unexpected bytes after the replies")
    return replies


def reads_own(connection: Any) -> bool:
    """Whether the hot path may send and read on ``connection``'s socket itself.

    Not when a health check may be due, nor when the connection's class has a send or
    a read of its own: redis-py's Sentinel connection turns a READONLY reply into a
    disconnect and a ConnectionError, so that the retry finds the new primary.
    """
    kind = type(connection)
    return (
        not connection.health_check_interval
        and kind.read_response is Connection.read_response
        and kind.send_packed_command is Connection.send_packed_command
    )


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
        reused = lease is not None and lease.pid == os.getpid()
        reader = None
        if lease is not None and reused:
            connection = lease.connection
            reader = lease.reader
        else:
            # None yet, no holding from this pool, or one inherited through fork().
            connection = pool.get_connection()
            lease = None
            if held is not None:
                lease = held.lease = _Lease(pool, connection)
        try:
            packed = pack(connection, commands)
            count = len(commands)
            replies: list[Any] | None = None
            if reused and connection.is_connected:
                # The hot path: the thread's own connection, open.
                try:
                    if reader is not None:
                        replies = exchange(connection._sock, reader, packed[0], count)
                    else:
                        replies = _round_trip(connection, packed, count)
                except RedisConnectionError:
                    if reader is not None:  # it may hold the start of a reply
                        lease.reader = make_reader(connection)  # type: ignore[union-attr]
                    # Closed by the server since the last flush (restart, idle timeout,
                    # CLIENT KILL), or a Sentinel connection that met a demoted primary:
                    # what the pool's check before lending finds out. Open it anew and
                    # send again below, as redis-py's retry allows. (The request, if it
                    # ran, runs twice: harmless for a flush.)
                    connection.disconnect()
            if replies is None:

                def round_trip() -> list[Any]:
                    if not connection.is_connected:
                        # connect(), not the implicit one of send_packed_command(): a
                        # Sentinel connection looks the primary up again in connect().
                        connection.connect()
                    return _round_trip(connection, packed, count)

                replies = connection.retry.call_with_retry(
                    round_trip, lambda error: connection.disconnect()
                )
        except BaseException:
            self._drop(connection, held, lease)
            raise
        if lease is None:
            pool.release(connection)
        return _raise_first_error(replies)

    def _drop(self, connection: Any, held: _Held | None, lease: _Lease | None) -> None:
        """After an error: whatever is half sent or half read must not reach the next user."""
        connection.disconnect()
        if held is not None and lease is not None:
            held.lease = None
            lease.give_back()
        else:
            self.redis.connection_pool.release(connection)


def _raise_first_error(replies: list[Any]) -> list[Any]:
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

    __slots__ = ("connection", "pid", "pool", "reader")

    def __init__(self, pool: ConnectionPool, connection: Any) -> None:
        # A weak reference: the pool holds its _Held, which holds this.
        self.pool = weakref.ref(pool)
        self.connection = connection
        self.pid = os.getpid()
        #: The hiredis reader of the hot path, None where redis-py reads (reads_own).
        self.reader = make_reader(connection) if reads_own(connection) else None

    def give_back(self, getpid: Callable[[], int] = os.getpid) -> None:
        pool = self.pool()
        # A forked child must not touch its parent's connection (its pool starts anew).
        if pool is not None and self.pid == getpid():
            pool.release(self.connection)

    # Runs when the thread's thread-local data goes, i.e. when the thread ends.
    __del__ = give_back


def make_reader(connection: Any) -> Any:
    # The connection's parser maps error replies to redis-py's classes (NoScriptError …).
    return hiredis.Reader(
        protocolError=InvalidResponse,
        replyError=connection._parser.parse_error,
        notEnoughData=_MORE,
    )


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


def key_prefix(client: DefaultClient) -> str | None:
    """Return what django-redis puts before every key, or None if it does more than that.

    With Django's default key function a cache key is the prefix and version followed
    by the key; a client class with its own ``make_key``, or a ``KEY_FUNCTION``, may do
    anything.
    """
    if type(client).make_key is not DefaultClient.make_key:
        return None
    backend = client._backend
    if backend.key_func is not default_key_func:
        return None
    return f"{backend.key_prefix}:{backend.version}:"


def key_maker(client: DefaultClient) -> Callable[[str], str]:
    """Return ``str(client.make_key(key))`` as a function of ``key``, minus the CacheKey.

    django-redis' ``make_key`` wraps each name in a ``CacheKey`` (a str subclass) that
    the flush turns back into a str. With a plain prefix (:func:`key_prefix`) that is
    one string concatenation.
    """
    prefix = key_prefix(client)
    if prefix is not None:
        return prefix.__add__
    if type(client).make_key is not DefaultClient.make_key:
        return lambda key: str(client.make_key(key))
    backend = client._backend
    key_func, prefix, version = backend.key_func, backend.key_prefix, backend.version
    return lambda key: str(key_func(key, prefix, version))
