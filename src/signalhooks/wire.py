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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.cache.backends.base import default_key_func
from django_redis.client import DefaultClient
from redis.exceptions import ResponseError


def pack(commands: list[tuple[str, ...]], encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Return ``commands`` in the Redis protocol, as redis-py packs str arguments."""
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
        connection = pool.get_connection()
        try:
            encoder = connection.encoder
            packed = pack(commands, encoder.encoding, encoder.encoding_errors)

            def round_trip() -> list[Any]:
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
            raise
        finally:
            pool.release(connection)
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        return replies


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
