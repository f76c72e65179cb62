"""A redis-py connection that counts round trips: one per packed send to the server."""

from __future__ import annotations

import threading

from redis.connection import Connection


class CountingConnection(Connection):
    _lock = threading.Lock()
    round_trips = 0

    def send_packed_command(self, command, check_health=True):
        with CountingConnection._lock:
            CountingConnection.round_trips += 1
        super().send_packed_command(command, check_health)
