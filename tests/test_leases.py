from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.test import override_settings

from signalhooks import cached, invalidate, is_cached, retry
from signalhooks.cache import tag_key
from tests.cache_helpers import ALWAYS, Renders, stored_key, wait_until
from tests.cacheapp.models import Entry
from tests.redis_server import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)

cache = caches["default"]


def render_titles():
    return [e.title for e in Entry.objects.order_by("pk")]


def test_cached_plain_key_set_under_a_cancelled_lease_is_dropped():
    invalidate(Entry, keys=["home"])
    Entry.objects.create(title="first", slug="a")
    computing, committed = threading.Event(), threading.Event()

    def slow_render():
        titles = render_titles()
        computing.set()
        assert committed.wait(10)  # another request commits a change meanwhile
        return titles

    def writer():
        try:
            assert computing.wait(10)
            Entry.objects.create(title="second", slug="b")  # deletes "home": the lease goes
        finally:
            connection.close()
            committed.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert cached("home", slow_render) == ["first"]  # returned, but not stored
    thread.join()
    assert cached("home", render_titles) == ["first", "second"]
    assert cached("home", lambda: "not called") == ["first", "second"]


def test_cached_hit_is_one_round_trip_with_tags_and_the_epoch(round_trips):
    cached("home", lambda: "page", tags=["entries", "author:1"])
    # The first hit after a change of the numbers (the test before deleted them) reads
    # them again on the tracking connection; from then on a hit is one GET.
    cached("home", lambda: "not called", tags=["entries", "author:1"])
    start = round_trips()
    assert cached("home", lambda: "not called", tags=["entries", "author:1"]) == "page"
    assert round_trips() - start == 1


def run_threads(count, target):
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_cached_sixteen_concurrent_misses_compute_once():
    computed, results = [], []
    start = threading.Barrier(16)

    def compute():
        computed.append(1)
        threading.Event().wait(0.3)  # a slow render
        return "page"

    def request():
        start.wait()
        results.append(cached("hot", compute, tags=["entries"]))

    run_threads(16, request)
    assert len(computed) == 1
    assert results == ["page"] * 16


def test_cached_waiting_is_bounded():
    holding, done = threading.Event(), threading.Event()

    def slow():
        holding.set()
        assert done.wait(10)
        return "slow"

    holder = threading.Thread(target=lambda: cached("hot", slow))
    holder.start()
    assert holding.wait(10)
    try:
        with override_settings(SIGNALHOOKS={"LEASE_WAIT": 0.05}):
            assert cached("hot", lambda: "impatient") == "impatient"  # computed, not stored
    finally:
        done.set()
        holder.join()
    assert cached("hot", lambda: "not called") == "slow"


def test_cached_stale_serves_the_last_value_while_another_recomputes():
    invalidate(Entry, tags=["entries"])
    assert cached("home", lambda: "v1", tags=["entries"], stale=True) == "v1"
    Entry.objects.create(title="a", slug="a")  # bump: v1 is stale
    holding, done = threading.Event(), threading.Event()

    def slow():
        holding.set()
        assert done.wait(10)
        return "v2"

    holder = threading.Thread(target=lambda: cached("home", slow, tags=["entries"], stale=True))
    holder.start()
    assert holding.wait(10)
    try:
        assert cached("home", lambda: "not called", tags=["entries"], stale=True) == "v1"
    finally:
        done.set()
        holder.join()
    assert cached("home", lambda: "not called", tags=["entries"], stale=True) == "v2"


def test_cached_failed_compute_gives_the_lease_back():
    def broken():
        raise RuntimeError("template error")

    with pytest.raises(RuntimeError):
        cached("home", broken)
    with pytest.raises(RuntimeError):
        cached("home", broken, cache="locmem")  # no leases there: just raised
    # The next caller takes the lease at once (LEASE_WAIT would otherwise run out first).
    with override_settings(SIGNALHOOKS={"LEASE_WAIT": 0}):
        assert cached("home", lambda: "page") == "page"
    assert cached("home", lambda: "not called") == "page"


def test_cached_timeout_zero_stores_nothing():
    assert cached("home", lambda: 1, timeout=0) == 1
    assert cached("home", lambda: 2, timeout=0) == 2
    assert list(cache.iter_keys("home*")) == []
    assert cached("home", lambda: 3, timeout=None) == 3
    assert cache.ttl(stored_key("home")) is None  # forever


def test_cached_generations_expire_and_are_refreshed_on_use():
    with override_settings(SIGNALHOOKS={"GENERATION_TIMEOUT": 100}):
        cached("home", lambda: 1, tags=["entries"], timeout=30)
        # Twice the lifetime when less than it is left: an extension is a change that
        # every client holding the generation hears of, so it comes rarely.
        assert 190 < cache.ttl(tag_key("entries")) <= 200
        cache.expire(tag_key("entries"), 5)
        assert cached("home", lambda: 2, tags=["entries"], timeout=30) == 1
        assert cache.ttl(tag_key("entries")) > 90  # refreshed by the read
        cached("long", lambda: 1, tags=["entries"], timeout=1000)
        assert cache.ttl(tag_key("entries")) > 1000  # outlives every value under it


def test_cached_after_the_server_forgot_the_scripts():
    cached("home", lambda: 1)
    cache.client.get_client(write=True).script_flush()
    assert cached("home", lambda: 2) == 1
    assert cached("other", lambda: 3) == 3


@pytest.fixture
def replicated():
    """A django-redis cache (alias ``replicated``) on a primary and a real replica."""
    primary = RedisServer().start()
    replica = RedisServer(replica_of=primary).start()
    options = {
        "BACKEND": "django_redis.cache.RedisCache",
        # django-redis writes to the first and reads from a random one of the others.
        "LOCATION": [primary.url, replica.url],
        "KEY_PREFIX": "replicated",
    }
    retry.mark_delivered(["replicated"])
    try:
        with override_settings(CACHES={**settings.CACHES, "replicated": options}):
            replica.wait_in_sync()
            yield primary, replica
    finally:
        replica.stop()
        primary.stop()


def test_cached_reads_leases_generations_and_the_epoch_from_the_primary(replicated):
    primary, replica = replicated
    invalidate(Entry, keys=["entry"], tags=["entries"], cache="replicated")
    assert cached("entry", lambda: "old", cache="replicated") == "old"
    assert cached("list", lambda: "old", tags=["entries"], cache="replicated") == "old"
    replica.wait_in_sync()
    lagging = replica.client()
    lagging.client_pause(60_000, all=False)  # reads served, replication not applied: lag
    try:
        Entry.objects.create(title="a", slug="a")  # deletes "entry", bumps "entries"
        assert cached("entry", lambda: "new", cache="replicated") == "new"
        assert cached("list", lambda: "new", tags=["entries"], cache="replicated") == "new"
        # Hits, from the primary (a replica cannot even run the scripts: read-only).
        assert cached("entry", lambda: "not cached", cache="replicated") == "new"
        assert cached("list", lambda: "not cached", tags=["entries"], cache="replicated") == "new"
        # The replica still has the old generation: reading it would have served "old".
        generation = caches["replicated"].make_key(tag_key("entries"))
        assert replica.client().get(generation) != primary.client().get(generation)
    finally:
        lagging.client_unpause()


@pytest.mark.parametrize("alias", ["default", "locmem"])
def test_is_cached_looks_without_taking_a_lease(alias):
    assert not is_cached("home", tags=["entries"], cache=alias)
    assert cached("home", lambda: "page", tags=["entries"], cache=alias) == "page"  # no wait
    assert is_cached("home", tags=["entries"], cache=alias)
    assert not is_cached("home", cache=alias)  # without the tags: another key


# -- early recompute (XFetch) -------------------------------------------------------------


@pytest.mark.parametrize("alias", ["default", "locmem"])
def test_cached_early_recomputes_a_hit_before_it_expires(alias):
    render = Renders(0.01)
    assert cached("hot", render, timeout=60, early=ALWAYS, cache=alias) == 1
    assert cached("hot", render, timeout=60, early=ALWAYS, cache=alias) == 2  # recomputed
    assert cached("hot", render, timeout=60, cache=alias) == 2  # stored; no early: a hit
    assert render.count == 2


@pytest.mark.parametrize("alias", ["default", "locmem"])
def test_cached_early_far_from_expiry_is_a_plain_hit(alias):
    # A render of a few ms against a minute to go: cost * early * -ln(random) stays far
    # below the TTL for any draw (-ln of the smallest double is under 40).
    render = Renders()
    for _ in range(20):
        assert cached("hot", render, timeout=60, early=1.0, cache=alias) == 1
    assert render.count == 1


def test_cached_early_recomputes_one_caller_at_a_time():
    render = Renders()
    assert cached("hot", render, timeout=60, early=ALWAYS) == 1
    results = []
    start = threading.Barrier(8)

    def recompute():
        # Holds the lease until the seven others were served: none of them may recompute.
        assert wait_until(lambda: len(results) == 7)
        return render()

    def request():
        start.wait()
        results.append(cached("hot", recompute, timeout=60, early=ALWAYS))

    run_threads(8, request)
    assert render.count == 2
    assert sorted(results) == [1] * 7 + [2]
    assert cached("hot", lambda: "not called", timeout=60) == 2


def test_cached_early_recompute_under_a_cancelled_lease_is_not_stored():
    invalidate(Entry, keys=["home"])
    assert cached("home", render_titles, timeout=60, early=ALWAYS) == []
    computing, committed = threading.Event(), threading.Event()

    def slow_render():
        titles = render_titles()
        computing.set()
        assert committed.wait(10)
        return titles

    def writer():
        try:
            assert computing.wait(10)
            Entry.objects.create(title="new", slug="n")  # deletes "home" and its lease
        finally:
            connection.close()
            committed.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert cached("home", slow_render, timeout=60, early=ALWAYS) == []  # not stored
    thread.join()
    assert cached("home", render_titles, timeout=60) == ["new"]


def test_cached_early_hit_is_one_round_trip(round_trips):
    cached("home", lambda: "page", tags=["entries"], timeout=60, early=1.0)
    cached("home", lambda: "not called", tags=["entries"], timeout=60, early=1.0)  # numbers held
    start = round_trips()
    assert cached("home", lambda: "not called", tags=["entries"], timeout=60, early=1.0) == "page"
    assert round_trips() - start == 1


def test_cached_early_needs_an_expiry():
    render = Renders()
    assert cached("forever", render, timeout=None, early=ALWAYS) == 1
    assert cached("forever", render, timeout=None, early=ALWAYS) == 1  # never expires
    assert cached("forever", render, timeout=None, early=ALWAYS, cache="locmem") == 2
    assert cached("forever", render, timeout=None, early=ALWAYS, cache="locmem") == 2


@pytest.mark.parametrize("early", [-1, float("nan")])
def test_cached_early_refuses_what_is_not_a_beta(early):
    with pytest.raises(ValueError, match=r"cached\('home', early=.*\): early is XFetch's beta"):
        cached("home", lambda: 1, early=early)
