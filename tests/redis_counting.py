"""A redis-py connection that counts round trips: one per write that follows a read.

Counted on the socket, so a request sent on the socket directly (signalhooks' flush
does) counts like one sent through redis-py; writes with no read between them (a
request sent in chunks) are one round trip.
"""

from __future__ import annotations

import threading
from typing import Any

from redis.connection import Connection


class CountingSocket:
    """A socket that counts the round trips started on it."""

    __slots__ = ("_sock", "_wrote")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._wrote = False

    def sendall(self, data: Any, *args: Any) -> None:
        if not self._wrote:
            self._wrote = True
            with CountingConnection._lock:
                CountingConnection.round_trips += 1
        self._sock.sendall(data, *args)

    def recv(self, *args: Any) -> Any:
        self._wrote = False
        return self._sock.recv(*args)

    def recv_into(self, *args: Any) -> Any:
        self._wrote = False
        return self._sock.recv_into(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class CountingConnection(Connection):
    _lock = threading.Lock()
    round_trips = 0

    def _connect(self) -> Any:
        return CountingSocket(super()._connect())  # type: ignore[misc]
