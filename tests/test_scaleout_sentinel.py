"""Invalidations through django-redis' SentinelClient, across a real SENTINEL FAILOVER."""

from __future__ import annotations

import itertools
import time

import pytest
import redis
from django.core.cache import caches

from signalhooks import breaker, cached, invalidate
from signalhooks.epoch import EPOCH_KEY
from signalhooks.invalidation import pending_retries
from signalhooks.keys import tag_key
from tests.cacheapp.models import Entry
from tests.redis_topologies import SentinelTopology, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def topology():
    topology = SentinelTopology().start()
    yield topology
    topology.stop()


@pytest.fixture
def sentinel_cache(topology, settings):
    settings.CACHES = {
        **settings.CACHES,
        "sentinel": {
            "BACKEND": "django_redis.cache.RedisCache",
            # django-redis' Sentinel client: the host part is the name the sentinel watches.
            "LOCATION": f"redis://{topology.name}/0",
            "KEY_PREFIX": "sentinel-test",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "SENTINELS": [("127.0.0.1", topology.sentinel_port)],
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
        },
    }
    yield caches["sentinel"]


def on_primary(topology, cache, keys):
    """Return which of ``keys`` (cache keys) the current primary still holds."""
    host, port = topology.primary()
    primary = redis.Redis(host=host, port=port)
    return [key for key in keys if primary.exists(cache.make_key(key))]


def test_sentinel_invalidation_deletes_on_the_primary(topology, sentinel_cache):
    invalidate(Entry, keys=["entry:{pk}"], cache="sentinel")
    entry = Entry.objects.create(title="a", slug="a")
    sentinel_cache.set(f"entry:{entry.pk}", "cached")
    assert on_primary(topology, sentinel_cache, [f"entry:{entry.pk}"]) == [f"entry:{entry.pk}"]
    entry.save()
    assert on_primary(topology, sentinel_cache, [f"entry:{entry.pk}"]) == []


def test_sentinel_invalidations_after_a_failover_reach_the_new_primary(topology, sentinel_cache):
    invalidate(Entry, keys=["entry:{pk}"], cache="sentinel")
    first, second, third = (Entry.objects.create(title=n, slug=n) for n in "abc")
    first.save()  # the client now holds a connection to the primary
    old = topology.primary()
    topology.start_failover()
    host, port = topology.wait_promoted(old)
    demoted = redis.Redis(host=old[0], port=old[1])
    wait_for(lambda: demoted.info("replication")["role"] == "slave", "the old primary demoted")
    new = redis.Redis(host=host, port=port)
    keys = [f"entry:{e.pk}" for e in (second, third)]
    new.mset({sentinel_cache.make_key(k): b"cached" for k in keys})
    # The pooled connection still leads to the old primary, now a read-only replica:
    # that flush fails (or redis-py reconnects); the next one carries it to the new primary.
    second.save()
    third.save()
    assert on_primary(topology, sentinel_cache, keys) == []


def burst_of_saves(topology, entries, old, seconds=120):
    """Save entries one by one across a SENTINEL FAILOVER; return the cache keys saved.

    Each entry is saved once, so a later save cannot hide an invalidation lost earlier;
    the burst goes on until well after the sentinel named a new primary. How many saves
    that takes depends on the machine's speed (saves are fast while the breaker is open),
    so once ``entries`` are used up it saves new ones, for up to ``seconds``.
    """
    topology.wait_confirmed()  # the replica has what the test cached (it may just have resynced)
    saved, after_failover = [], 0
    deadline = time.monotonic() + seconds
    for entry in entries_then_new(entries):
        if len(saved) == 20:
            topology.start_failover()
        entry.title = "changed"
        entry.save()
        saved.append(f"entry:{entry.pk}")
        if topology.primary() != old:
            after_failover += 1
            if after_failover == 50:
                return saved
        if time.monotonic() > deadline:
            pytest.fail(f"the failover did not finish within {seconds} s of saves")
    raise AssertionError("unreachable: entries_then_new() never ends")


def entries_then_new(entries):
    yield from entries
    for n in itertools.count():
        yield Entry.objects.create(title=f"more{n}", slug=f"more{n}")


def settle(topology, old):
    """Wait for the failover to end and for the breaker a failed flush opened to close."""
    topology.wait_promoted(old)
    topology.wait_demoted(old)
    wait_for(lambda: not breaker.is_open("sentinel"), "the breaker of the cache closed")


# Between the replica's promotion and the old primary's demotion (the sentinel
# reconfigures it last) the old primary still acknowledges DELs, which its resync from
# the new primary discards. With WAIT_REPLICAS=1 the replica it lost confirms none of
# them: each such flush goes to the retry store, and the next one reaches the new primary.
def test_sentinel_failover_during_a_burst_of_saves_loses_no_invalidation(
    topology, sentinel_cache, settings
):
    invalidate(Entry, keys=["entry:{pk}"], cache="sentinel")
    entries = Entry.objects.bulk_create(Entry(title=f"e{i}", slug=f"e{i}") for i in range(3000))
    keys = [f"entry:{e.pk}" for e in entries]
    sentinel_cache.set_many(dict.fromkeys(keys, "cached"), timeout=None)
    # WAIT only from here: the bulk_create invalidated every key too, and a replica that
    # just resynced (the previous test's failover) may not confirm that flush in time;
    # it would then wait in the retry store and delete the keys cached since at the end.
    assert pending_retries("sentinel") == 0
    settings.SIGNALHOOKS = {"WAIT_REPLICAS": 1}
    old = topology.primary()
    saved = burst_of_saves(topology, entries, old)
    assert pending_retries("sentinel") > 0  # flushes nobody confirmed
    settle(topology, old)
    # A later flush retries the failures (given time for the ack on a loaded test machine).
    settings.SIGNALHOOKS = {"WAIT_REPLICAS": 1, "WAIT_TIMEOUT": 0.5}
    Entry.objects.create(title="one more", slug="one-more")
    assert pending_retries("sentinel") == 0
    assert on_primary(topology, sentinel_cache, saved) == []
    assert on_primary(topology, sentinel_cache, keys[len(saved) :]) == keys[len(saved) :]


# Without WAIT_REPLICAS: what cached() stores carries the epoch, which records the run_id
# of the server that wrote it; the first script on another server starts a new one.
def test_sentinel_failover_serves_no_stale_cached_value(topology, sentinel_cache):
    invalidate(Entry, keys=["entry:{pk}"], tags=["entries"], cache="sentinel")
    entries = Entry.objects.bulk_create(Entry(title=f"e{i}", slug=f"e{i}") for i in range(3000))
    for entry in entries:
        assert cached(f"entry:{entry.pk}", lambda: "old", cache="sentinel") == "old"
    assert cached("entries", lambda: "old", tags=["entries"], cache="sentinel") == "old"
    old = topology.primary()
    before = epoch_on(*old)
    saved = burst_of_saves(topology, entries, old)
    settle(topology, old)
    computed = []

    def fresh(key):
        computed.append(key)
        return "fresh"

    for key in saved:
        assert cached(key, lambda key=key: fresh(key), cache="sentinel") == "fresh"
    assert cached("entries", lambda: fresh("entries"), tags=["entries"], cache="sentinel") == (
        "fresh"
    )
    assert computed == [*saved, "entries"]
    # The new primary started a new epoch, above the old one, on the first script.
    host, port = topology.primary()
    after = epoch_on(host, port)
    assert after[b"run_id"] == redis.Redis(host=host, port=port).info("server")["run_id"].encode()
    assert int(after[b"epoch"]) > int(before[b"epoch"])


def epoch_on(host, port):
    return redis.Redis(host=host, port=port).hgetall(caches["sentinel"].make_key(EPOCH_KEY))


def test_sentinel_connections_keep_redis_py_s_own_read(topology, sentinel_cache):
    # Sentinel's read turns READONLY (a demoted primary) into a reconnect to the new one.
    from signalhooks.wire import reads_own

    invalidate(Entry, keys=["entry:{pk}"], cache="sentinel")
    Entry.objects.create(title="a", slug="a")  # a flush: the thread now holds a connection
    pool = sentinel_cache.client.get_client(write=True).connection_pool
    held = pool.__dict__["_signalhooks_held"].lease.connection
    assert type(held).__name__ == "SentinelManagedConnection"
    assert not reads_own(held)


def test_sentinel_hits_after_a_failover_track_on_the_new_primary(topology, sentinel_cache):
    # A hit holds the numbers on a tracking connection to the primary. Demoting it, the
    # sentinel kills its clients: the next hit reconnects through the sentinel.
    def unexpected():
        raise AssertionError("computed on a hit")

    assert cached("list", lambda: "old", tags=["entries"], cache="sentinel") == "old"
    assert cached("list", unexpected, tags=["entries"], cache="sentinel") == "old"
    topology.wait_confirmed()
    old = topology.primary()
    topology.start_failover()
    settle(topology, old)
    host, port = topology.primary()
    new = redis.Redis(host=host, port=port)
    new.incr(sentinel_cache.make_key(tag_key("entries")))
    assert cached("list", lambda: "new", tags=["entries"], cache="sentinel") == "new"
    assert cached("list", unexpected, tags=["entries"], cache="sentinel") == "new"
    assert [c for c in new.client_list() if "t" in c["flags"]]
    demoted = redis.Redis(host=old[0], port=old[1])
    assert not [c for c in demoted.client_list() if "t" in c["flags"]]
