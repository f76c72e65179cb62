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

On a held connection without health checks, whose class keeps redis-py's own send
and read (not Sentinel's, which turns a READONLY reply into a reconnect to the new
primary), it also skips redis-py's own send and read: the packed request goes out in
one ``sendall`` and the replies are read by :func:`read_replies`, a reader of the RESP2
and RESP3 reply types (bulk strings come back as bytes). redis-py spends eight times
as much CPU on one reply (its socket buffer, its error wrapping, its push-message
checks) as the socket calls themselves. What it guarantees is kept: error replies
become redis-py's exception classes (``NoScriptError``, ``ReadOnlyError`` …) through
the connection's own parser, a timeout raises redis-py's ``TimeoutError``, any other
socket error or a closed connection its ``ConnectionError``, so the retry and the
disconnect behave as before; a reply that does not parse, or bytes beyond the
replies, disconnect.

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
* instead of ``can_read()`` before the write: where the flush reads its own replies, a
  closed connection found by the write or the read (restart, idle ``timeout``,
  ``CLIENT KILL``: the server closed it since the last flush) is opened anew and the
  request sent again, under the connection's ``retry`` (a timeout is not retried
  there: a hung server is not waited for twice); where redis-py reads, a poll of the
  socket (every reply was read, so readable means closed) opens it anew first;
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
import socket
import threading
import weakref
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.base import default_key_func
from django_redis.client import DefaultClient
from redis.connection import Connection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


class Packed:
    """A command given with its protocol text, packed once by its caller.

    ``text`` must be what :func:`pack` makes of ``args`` when every argument is
    ASCII (a str's length is then its byte length); it is used only then, and
    ``args`` packed otherwise.
    """

    __slots__ = ("args", "text")

    def __init__(self, args: tuple[str, ...], text: str | None) -> None:
        self.args = args
        self.text = text


Command = tuple[str, ...] | Packed


def pack_text(args: tuple[str, ...]) -> str:
    """Return ``args`` in the Redis protocol as text (its bytes if it is ASCII)."""
    return f"*{len(args)}\r\n" + pack_arguments(args)


def pack_arguments(args: tuple[str, ...]) -> str:
    """Return ``args`` as :func:`pack_text` does, without the array header."""
    return "".join([f"${len(arg)}\r\n{arg}\r\n" for arg in args])


def pack(commands: list[Command], encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Return ``commands`` in the Redis protocol, as redis-py packs str arguments."""
    # ASCII text in an ASCII-compatible encoding (what key names nearly always are):
    # a str's length is its byte length, so the whole request is one str, encoded once.
    parts = []
    for command in commands:
        if type(command) is Packed and command.text is not None:
            parts.append(command.text)
        else:
            parts.append(pack_text(_args(command)))
    text = "".join(parts)
    if encoding in _ASCII_COMPATIBLE and text.isascii():
        return text.encode(encoding, errors)
    return _pack_encoded(commands, encoding, errors)


#: Encodings in which ASCII text is its own bytes (redis-py's default is "utf-8").
_ASCII_COMPATIBLE = frozenset({"utf-8", "utf8", "UTF-8", "latin-1", "latin1", "ascii"})


def _args(command: Command) -> tuple[str, ...]:
    return command.args if type(command) is Packed else command  # type: ignore[return-value]


def _pack_encoded(commands: list[Command], encoding: str, errors: str) -> bytes:
    parts = []
    for command in commands:
        args = _args(command)
        parts.append(f"*{len(args)}\r\n".encode())
        for arg in args:
            data = arg.encode(encoding, errors)
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


#: Bytes asked of the socket per read (a flush's replies fit in one).
_READ_SIZE = 65536


class _Incomplete(Exception):
    """The buffer ends inside a reply: read more."""


#: What :func:`_parse` returns for a push message, which is no reply.
_PUSH: Any = object()


def _parse(data: bytes, at: int, parse_error: Callable[[str], Exception]) -> tuple[Any, int]:
    """Return the reply starting at ``data[at]`` and the index after it.

    RESP2 and the RESP3 types a command reply can have (redis-py 8 speaks RESP3 by
    default). A ``>`` push message (out of band: redis-py 8's maintenance notices)
    is returned as :data:`_PUSH` and skipped by the caller: a flush connection acts on
    none, and one the server is about to move fails and is reconnected by the retry.
    Attributes (``|``, which no command of a flush gets) raise InvalidResponse.
    """
    end = data.find(b"\r\n", at)
    if end < 0:
        raise _Incomplete
    kind, line, after = data[at], data[at + 1 : end], end + 2
    if kind == 58 or kind == 40:  # ":" integer, "(" big number
        return int(line), after
    if kind == 36 or kind == 33 or kind == 61:  # "$" bulk, "!" bulk error, "=" verbatim
        size = int(line)
        if size < 0:  # $-1: nil
            return None, after
        if len(data) < after + size + 2:
            raise _Incomplete
        text = data[after : after + size]
        if kind == 33:
            return parse_error(text.decode("utf-8", "replace")), after + size + 2
        return (text[4:] if kind == 61 else text), after + size + 2  # "=": "txt:" first
    if kind == 62:  # ">" push
        for _ in range(int(line)):
            _, after = _parse(data, after, parse_error)
        return _PUSH, after
    if kind == 42 or kind == 126 or kind == 37:  # "*" array, "~" set, "%" map
        size = int(line)
        if size < 0:  # *-1: nil
            return None, after
        items: list[Any] = []
        for _ in range(size * 2 if kind == 37 else size):
            item, after = _parse(data, after, parse_error)
            items.append(item)
        if kind == 37:
            return dict(zip(items[::2], items[1::2], strict=True)), after
        return items, after
    if kind == 43:  # "+" simple string
        return line, after
    if kind == 45:  # "-" error: redis-py's exception class for it, as a value
        return parse_error(line.decode("utf-8", "replace")), after
    if kind == 95:  # "_" null
        return None, after
    if kind == 35:  # "#" boolean
        return line == b"t", after
    if kind == 44:  # "," double
        return float(line), after
    raise InvalidResponse(f"Protocol error, got {data[at : at + 1]!r} as reply type byte")


def read_replies(
    sock: socket.socket, count: int, parse_error: Callable[[str], Exception]
) -> list[Any]:
    """Read exactly ``count`` replies from ``sock``; error replies are returned, not raised."""
    data = b""
    replies: list[Any] = []
    at = 0
    while True:
        try:
            chunk = sock.recv(_READ_SIZE)
        except TimeoutError as error:  # socket.timeout
            raise RedisTimeoutError("Timeout reading from socket") from error
        except OSError as error:
            raise RedisConnectionError(f"Error while reading from socket: {error}") from error
        if not chunk:
            raise RedisConnectionError("Connection closed by server.")
        data += chunk
        try:
            while len(replies) < count:
                reply, at = _parse(data, at, parse_error)
                if reply is not _PUSH:
                    replies.append(reply)
        except _Incomplete:
            continue  # ``at`` is where the unfinished reply starts
        if at != len(data):
            raise InvalidResponse(f"{len(data) - at} unexpected byte(s) after the replies")
        return replies


def _exchange(connection: Any, packed: bytes, count: int) -> list[Any]:
    """Send ``packed`` on ``connection``'s socket; read its ``count`` replies ourselves."""
    sock = connection._sock
    send_all(sock, packed)
    return read_replies(sock, count, connection._parser.parse_error)


def send_all(sock: socket.socket, packed: bytes) -> None:
    try:
        sock.sendall(packed)
    except TimeoutError as error:
        raise RedisTimeoutError("Timeout writing to socket") from error
    except OSError as error:
        raise RedisConnectionError(f"Error while writing to socket: {error}") from error


class Pipeline:
    """Commands (all arguments str) sent in one write on one pooled connection."""

    __slots__ = ("commands", "redis")

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.commands: list[Command] = []

    def execute_command(self, *args: str) -> None:
        self.commands.append(args)

    def execute_packed(self, command: Packed) -> None:
        self.commands.append(command)

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
        if lease is not None and reused:
            connection = lease.connection
            own_reads = reads_own(connection)
            sock = connection._sock
            if sock is not None and not own_reads and select.select((sock,), (), (), 0)[0]:
                # redis-py reads here: every reply was read, so readable now means closed
                # by the server (restart, idle timeout, CLIENT KILL): open it anew.
                connection.disconnect()
        else:
            # None yet, no holding from this pool, or one inherited through fork().
            connection = pool.get_connection()
            lease = None
            if held is not None:
                lease = held.lease = _Lease(pool, connection)
            own_reads = lease is not None and reads_own(connection)
        try:
            encoder = connection.encoder
            packed = pack(commands, encoder.encoding, encoder.encoding_errors)
            count = len(commands)
            replies: list[Any] | None = None
            if reused and own_reads and connection._sock is not None:
                # The hot path: the thread's own connection, open, no health check due.
                try:
                    replies = _exchange(connection, packed, count)
                except RedisConnectionError:
                    # Closed by the server since the last flush (restart, idle timeout,
                    # CLIENT KILL): what the pool's check before lending finds out. Open
                    # it anew and send again below, as redis-py's retry allows. (The
                    # request, if it ran, runs twice: harmless for a flush.)
                    connection.disconnect()
            if replies is None:

                def round_trip() -> list[Any]:
                    if connection._sock is None:
                        # connect(), not the implicit one of send_packed_command(): a
                        # Sentinel connection looks the primary up again in connect().
                        connection.connect()
                    if own_reads:
                        return _exchange(connection, packed, count)
                    connection.send_packed_command((packed,))
                    read: list[Any] = []
                    for _ in commands:
                        try:
                            read.append(connection.read_response())
                        except ResponseError as error:
                            read.append(error)
                    return read

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


def reads_own(connection: Any) -> bool:
    """Whether the flush may send and read on ``connection``'s socket itself.

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
