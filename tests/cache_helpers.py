"""Helpers for the cache tests: fill and inspect real Redis, a server the test may stop."""

from __future__ import annotations

import signal
import threading
import time
import uuid

from django.conf import settings
from django.core.cache import caches
from django.test import override_settings

from signalhooks import retry
from signalhooks.keys import tag_key
from tests.redis_counting import CountingConnection
from tests.redis_server import RedisServer

cache = caches["default"]


def fill(*keys, backend=cache):
    for key in keys:
        backend.set(key, "cached", timeout=300)


def present(*keys, backend=cache):
    return {key for key in keys if backend.get(key) is not None}


def stored_key(key, backend=cache):
    """Return the key cached() stored ``key``'s value under (with the epoch and generations)."""
    [found] = [k for k in backend.iter_keys(f"{key}@*") if "|" not in k]
    return found


def generation(tag, backend=cache):
    return backend.get(tag_key(tag))


def flaky_cache():
    """Yield a Redis server of its own and a django-redis cache on it, alias ``flaky``."""
    server = RedisServer().start()
    options = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": server.url,
        "KEY_PREFIX": f"flaky-{uuid.uuid4().hex[:6]}",
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 0.3,
            "SOCKET_TIMEOUT": 0.3,
            "CONNECTION_POOL_KWARGS": {"connection_class": CountingConnection},
        },
    }
    retry.mark_delivered(["flaky"])  # its store is empty: no first-flush SELECT
    try:
        with override_settings(CACHES={**settings.CACHES, "flaky": options}):
            yield server, caches["flaky"]
    finally:
        if server.process is not None:
            server.process.send_signal(signal.SIGCONT)
        server.stop()


#: An ``early`` so large that every hit of a value with a known cost recomputes (XFetch
#: recomputes when cost * early * -ln(random) reaches the remaining TTL: here unless the
#: draw is within 1e-12 of 1).
ALWAYS = 1e15


class Renders:
    """A page whose n-th render returns n, taking ``seconds``."""

    def __init__(self, seconds=0.0):
        self.count = 0
        self.seconds = seconds

    def __call__(self):
        self.count += 1
        threading.Event().wait(self.seconds)
        return self.count


def wait_until(condition, seconds=10.0):
    """Return whether ``condition()`` came true within ``seconds`` (polling)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
