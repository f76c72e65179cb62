from __future__ import annotations

import pytest

from signalhooks.registry import registry

# The fixture (and its hook) users get from the pytest11 entry point; the suite turns the
# entry point off (-p no:signalhooks) and imports them here, after coverage has started.
from signalhooks.testing import pytest_runtest_call, signalhooks_record  # noqa: F401


@pytest.fixture(autouse=True)
def isolated_registry():
    """Hooks a test registers are gone after it."""
    with registry.isolated():
        yield


@pytest.fixture(autouse=True)
def clean_caches():
    """Each test starts with empty caches; only our own key prefix is ever deleted."""
    yield
    from django.core.cache import caches

    caches["default"].delete_pattern("*")
    caches["locmem"].clear()
    builtin = caches["builtin"]
    client = builtin._cache.get_client(write=True)
    keys = list(client.scan_iter(match=builtin.make_key("*")))
    if keys:
        client.delete(*keys)


@pytest.fixture
def round_trips():
    """Return a function giving the Redis round trips since the fixture started."""
    from django.core.cache import caches

    from tests.redis_counting import CountingConnection

    caches["default"].get("warm-up")  # connect (and its handshake) before counting
    start = CountingConnection.round_trips
    return lambda: CountingConnection.round_trips - start


@pytest.fixture(autouse=True)
def cache_state_per_test():
    """Each test starts with closed circuit breakers and an empty retry store.

    The store is empty (every test starts with empty tables), so mark it delivered:
    otherwise the first flush of the run would add its one SELECT to a counted test.
    """
    from django.conf import settings

    from signalhooks import breaker, retry

    breaker.reset()
    retry.mark_delivered(settings.CACHES)
    yield
    breaker.reset()


@pytest.fixture
def flaky():
    """A django-redis cache (alias ``flaky``) on a Redis server the test may stop or pause."""
    from tests.cache_helpers import flaky_cache

    yield from flaky_cache()


@pytest.fixture
def flushes():
    """Record every cache_invalidated send."""
    sent = []

    def receiver(sender, **kwargs):
        sent.append({"cache": sender, **{k: kwargs[k] for k in ("keys", "tags", "patterns")}})

    from signalhooks import cache_invalidated

    cache_invalidated.connect(receiver, weak=False, dispatch_uid="test_cache.flushes")
    yield sent
    cache_invalidated.disconnect(dispatch_uid="test_cache.flushes")


def close_dropped_redis_connections() -> None:
    """Collect the garbage, closing each dropped redis-py connection before it goes.

    redis-py 8 keeps every connection in a reference cycle (its maintenance-notification
    handlers), so a client or cache backend a test let go is freed by the garbage
    collector, which may finalize the socket before the connection's own ``__del__``
    closes it: an "unclosed socket" ResourceWarning that is redis-py's order of
    finalizers, not a leak. Here the connections of that garbage are closed the way
    their ``__del__`` would, then the garbage goes.
    """
    import gc

    from redis.connection import AbstractConnection

    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        for dropped in gc.garbage:
            # Not isinstance(): the garbage holds lazy objects that set up when asked.
            if AbstractConnection in type(dropped).__mro__:
                dropped.disconnect()
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@pytest.fixture(autouse=True, scope="module")
def dropped_redis_connections_closed():
    yield
    close_dropped_redis_connections()


def pytest_sessionfinish(session: pytest.Session) -> None:
    close_dropped_redis_connections()


@pytest.fixture(autouse=True)
def announced_users_forgotten():
    """Forget the users a test announced: its rows go without delete signals (a rollback, or
    transactional_db's TRUNCATE), so on PostgreSQL, whose sequences do not restart, a later
    test's user given the same pk would otherwise count as announced already."""
    yield
    from signalhooks import users

    users.forget_announced()
