from __future__ import annotations

import logging
import signal
import threading

import pytest
from django.core.cache import caches
from django.test import override_settings

from signalhooks import cached, invalidate, is_cached
from signalhooks.invalidation import pending_retries
from tests.cacheapp.models import Entry
from tests.redis_counting import CountingConnection
from tests.redis_server import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)


def failures(caplog):
    return [r for r in caplog.records if r.name == "signalhooks" and "failed" in r.getMessage()]


def test_cached_computes_when_redis_is_down(flaky, caplog):
    server, _ = flaky
    server.stop()
    with caplog.at_level(logging.ERROR, logger="signalhooks"):
        assert cached("page", lambda: "rendered", tags=["entries"], cache="flaky") == "rendered"
    [record] = failures(caplog)
    assert "reading on cache 'flaky' failed (ConnectionError" in record.getMessage()


def test_cached_hung_redis_opens_the_breaker(flaky, caplog):
    server, _ = flaky
    assert cached("page", lambda: "cached", cache="flaky") == "cached"
    admin = server.client()  # connected before the pause, so it can lift it
    admin.client_pause(60_000, all=False)  # hung for writes, and our scripts write
    try:
        with caplog.at_level(logging.ERROR, logger="signalhooks"):
            assert cached("page", lambda: "first", cache="flaky") == "first"  # times out
            trips = CountingConnection.round_trips
            computed = [cached("page", lambda i=i: i, cache="flaky") for i in range(20)]
            assert CountingConnection.round_trips == trips  # skipped, no timeouts waited out
    finally:
        admin.client_unpause()
    assert computed == list(range(20))
    [record] = failures(caplog)  # logged once, not per call
    assert "TimeoutError" in record.getMessage() and "skipping it for 5.0s" in record.getMessage()


def test_cached_breaker_closes_after_its_time(flaky, caplog):
    server, _ = flaky
    server.process.send_signal(signal.SIGSTOP)
    try:
        with override_settings(SIGNALHOOKS={"BREAKER_SECONDS": 0}):
            assert cached("page", lambda: 1, cache="flaky") == 1
    finally:
        server.process.send_signal(signal.SIGCONT)
    with caplog.at_level(logging.WARNING, logger="signalhooks"):
        assert cached("page", lambda: 2, cache="flaky") == 2  # tried again: it works
    assert cached("page", lambda: 3, cache="flaky") == 2
    assert "cache 'flaky' answers again" in caplog.text


def test_cached_store_failure_returns_the_value(flaky, caplog):
    server, _ = flaky

    def render():
        server.stop()  # down between the read and the store
        return "rendered"

    with caplog.at_level(logging.ERROR, logger="signalhooks"):
        assert cached("page", render, cache="flaky") == "rendered"
    [record] = failures(caplog)
    assert "storing on cache 'flaky' failed" in record.getMessage()


def test_cached_failure_logs_are_rate_limited(flaky, caplog):
    server, _ = flaky
    server.stop()
    with (
        override_settings(SIGNALHOOKS={"BREAKER_SECONDS": 0}),
        caplog.at_level(logging.ERROR, logger="signalhooks"),
    ):
        for i in range(5):
            assert cached("page", lambda i=i: i, cache="flaky") == i  # each one tries
    assert len(failures(caplog)) == 1


def test_invalidate_with_an_open_breaker_goes_to_the_retry_store(flaky, caplog):
    server, _ = flaky
    invalidate(Entry, keys=["entry:{slug}"], cache="flaky")
    server.process.send_signal(signal.SIGSTOP)
    try:
        with caplog.at_level(logging.ERROR, logger="signalhooks"):
            Entry.objects.create(title="a", slug="a")  # waits out one timeout
            trips = CountingConnection.round_trips
            for slug in "bcd":
                Entry.objects.create(title=slug, slug=slug)
            assert CountingConnection.round_trips == trips  # straight to the store
    finally:
        server.process.send_signal(signal.SIGCONT)
    assert Entry.objects.count() == 4
    assert pending_retries("flaky") == 4
    assert len(failures(caplog)) == 1


def test_cached_value_that_cannot_be_stored_leaves_the_cache_on(caplog):
    with caplog.at_level(logging.ERROR, logger="signalhooks"):
        lock = cached("lock", threading.Lock)  # cannot be pickled
    assert isinstance(lock, type(threading.Lock()))
    [record] = failures(caplog)
    assert "storing on cache 'default' failed (TypeError" in record.getMessage()
    assert "skipping it" not in record.getMessage()
    assert cached("page", lambda: "page") == "page"
    assert cached("page", lambda: "not cached") == "page"  # the cache is still on
    assert list(caches["default"].iter_keys("lock@*")) == []  # its lease was given back


def test_is_cached_answers_false_while_redis_is_down(flaky, caplog):
    server, _ = flaky
    assert cached("page", lambda: "cached", tags=["entries"], cache="flaky") == "cached"
    assert is_cached("page", tags=["entries"], cache="flaky")
    server.stop()
    with caplog.at_level(logging.ERROR, logger="signalhooks"):
        assert not is_cached("page", tags=["entries"], cache="flaky")
        trips = CountingConnection.round_trips
        assert not is_cached("page", tags=["entries"], cache="flaky")  # breaker open
        assert CountingConnection.round_trips == trips  # skipped, no timeout waited out
    [record] = failures(caplog)
    assert "reading on cache 'flaky' failed (ConnectionError" in record.getMessage()


def test_is_cached_failure_logs_are_rate_limited(flaky, caplog):
    server, _ = flaky
    server.kill()
    with (
        override_settings(SIGNALHOOKS={"BREAKER_SECONDS": 0}),
        caplog.at_level(logging.ERROR, logger="signalhooks"),
    ):
        for _ in range(5):
            assert not is_cached("page", cache="flaky")  # each one tries
    assert len(failures(caplog)) == 1


def test_is_cached_on_django_redis_cache_while_redis_is_down(caplog):
    """Django's own RedisCache (no Lua: the epoch and generations read with get_many)."""
    server = RedisServer().start()
    builtin = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": server.url,
        "OPTIONS": {"socket_connect_timeout": 0.3, "socket_timeout": 0.3},
    }
    try:
        with override_settings(
            CACHES={**caches.settings, "plain": builtin}, SIGNALHOOKS={"BREAKER_SECONDS": 0}
        ):
            assert cached("page", lambda: "cached", tags=["entries"], cache="plain") == "cached"
            assert is_cached("page", tags=["entries"], cache="plain")
            server.kill()
            with caplog.at_level(logging.ERROR, logger="signalhooks"):
                assert not is_cached("page", tags=["entries"], cache="plain")
            [record] = failures(caplog)
            assert "reading on cache 'plain' failed (ConnectionError" in record.getMessage()
            server.start()  # back, empty: a miss until cached() stores the value again
            assert not is_cached("page", tags=["entries"], cache="plain")
            assert cached("page", lambda: "again", tags=["entries"], cache="plain") == "again"
            assert is_cached("page", tags=["entries"], cache="plain")
    finally:
        server.stop()
