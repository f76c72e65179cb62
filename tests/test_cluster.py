"""cached() on a real three-primary Redis Cluster: leases, round trips, node restarts."""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import threading

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from signalhooks import cached, invalidate, is_cached
from signalhooks.cache import glob_escape
from signalhooks.cluster import HASH_TAG_GLOB, slotted
from signalhooks.epoch import EPOCH_KEY
from signalhooks.keys import tag_key
from tests.cache_helpers import ALWAYS, Renders, wait_until
from tests.cacheapp.models import Entry

pytestmark = pytest.mark.django_db(transaction=True)

if importlib.util.find_spec("django_valkey") is None and not os.environ.get("CI"):
    # Under CI the test dependencies include it: the import below fails instead.
    pytest.skip("pip install django-valkey to run the cluster tests", allow_module_level=True)

from tests import cluster_rig  # noqa: E402
from tests.cluster_rig import NodeCounting  # noqa: E402

cluster = cluster_rig.cluster
cluster_cache = cluster_rig.cluster_cache


def node_of(cluster, cache, key):
    """Return the port of the primary holding what cached() stores for ``key``."""
    return cluster.holding(cache.make_key(slotted(key)))


def key_on(cluster, cache, prefix, where):
    """Return the first ``<prefix><n>`` whose value lives on a node ``where(port)`` accepts."""
    return next(
        f"{prefix}{n}" for n in range(1000) if where(node_of(cluster, cache, f"{prefix}{n}"))
    )


def stored(cluster, cache, key):
    """Return the value keys (not leases) cached() holds for ``key``, on any node."""
    pattern = cache.make_key(HASH_TAG_GLOB + glob_escape(key)) + "@*"
    return [
        name
        for node in cluster.nodes
        for name in node.scan_iter(match=pattern)
        if not name.endswith(b"|lease")
    ]


def run_threads(count, target):
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def render_titles():
    return [e.title for e in Entry.objects.order_by("pk")]


def test_cluster_set_under_a_cancelled_lease_is_dropped(cluster_cache):
    invalidate(Entry, keys=["home"], cache="cluster")
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
    assert cached("home", slow_render, cache="cluster") == ["first"]  # returned, not stored
    thread.join()
    assert cached("home", render_titles, cache="cluster") == ["first", "second"]
    assert cached("home", lambda: "not called", cache="cluster") == ["first", "second"]


def test_cluster_sixteen_concurrent_misses_compute_once(cluster_cache):
    computed, results = [], []
    start = threading.Barrier(16)

    def compute():
        computed.append(1)
        threading.Event().wait(0.3)  # a slow render
        return "page"

    def request():
        start.wait()
        results.append(cached("hot", compute, tags=["entries"], cache="cluster"))

    run_threads(16, request)
    assert len(computed) == 1
    assert results == ["page"] * 16


def test_cluster_waiting_is_bounded(cluster_cache):
    holding, done = threading.Event(), threading.Event()

    def slow():
        holding.set()
        assert done.wait(10)
        return "slow"

    holder = threading.Thread(target=lambda: cached("hot", slow, cache="cluster"))
    holder.start()
    assert holding.wait(10)
    try:
        with override_settings(SIGNALHOOKS={"LEASE_WAIT": 0.05}):
            assert cached("hot", lambda: "impatient", cache="cluster") == "impatient"
    finally:
        done.set()
        holder.join()
    assert cached("hot", lambda: "not called", cache="cluster") == "slow"


def test_cluster_stale_serves_the_last_value_while_another_recomputes(cluster_cache):
    invalidate(Entry, tags=["entries"], cache="cluster")

    def page(compute):
        return cached("home", compute, tags=["entries"], cache="cluster", stale=True)

    assert page(lambda: "v1") == "v1"
    Entry.objects.create(title="a", slug="a")  # bump: v1 is stale
    holding, done = threading.Event(), threading.Event()

    def slow():
        holding.set()
        assert done.wait(10)
        return "v2"

    holder = threading.Thread(target=lambda: page(slow))
    holder.start()
    assert holding.wait(10)
    try:
        assert page(lambda: "not called") == "v1"
    finally:
        done.set()
        holder.join()
    assert page(lambda: "not called") == "v2"


@pytest.mark.parametrize("key", ["user:{42}:page", "a{}b", "open{brace", "}{", "{}"])
def test_cluster_keys_with_braces_keep_value_lease_and_stale_copy_in_one_slot(
    cluster, cluster_cache, key
):
    invalidate(Entry, keys=[key.replace("{", "{{").replace("}", "}}")], cache="cluster")
    assert cached(key, lambda: "v1", cache="cluster", stale=True) == "v1"
    [value] = stored(cluster, cluster_cache, key)
    slots = {
        cluster.nodes[0].cluster("keyslot", name)
        for name in (value, value + b"|lease", cluster_cache.make_key(slotted(key) + "|stale"))
    }
    assert len(slots) == 1
    assert cached(key, lambda: "not called", cache="cluster") == "v1"
    Entry.objects.create(title="a", slug="a")  # deletes the key's value
    assert stored(cluster, cluster_cache, key) == []
    assert cached(key, lambda: "v2", cache="cluster") == "v2"


def test_cluster_hit_is_two_round_trips(cluster, cluster_cache):
    tags = ["author:1", "site"]
    cached("home", lambda: "page", cache="cluster")
    cached("home", lambda: "page", tags=tags, cache="cluster")
    NodeCounting.sends.clear()
    assert cached("home", lambda: "not called", cache="cluster") == "page"
    # The epoch's node, then the value's node (twice the same node when it is both).
    assert NodeCounting.sends.total() == 2
    NodeCounting.sends.clear()
    assert cached("home", lambda: "not called", tags=tags, cache="cluster") == "page"
    # Step 1 sends once to each node holding the epoch or a generation, all at once.
    numbers = {cluster.holding(cluster_cache.make_key(n)) for n in [EPOCH_KEY, *map(tag_key, tags)]}
    assert NodeCounting.sends.total() == len(numbers) + 1


def test_cluster_is_cached_looks_without_taking_a_lease(cluster_cache):
    assert not is_cached("home", tags=["entries"], cache="cluster")
    # No lease taken: the next caller computes at once, even with no patience at all.
    with override_settings(SIGNALHOOKS={"LEASE_WAIT": 0}):
        assert cached("home", lambda: "page", tags=["entries"], cache="cluster") == "page"
    assert is_cached("home", tags=["entries"], cache="cluster")


def test_cluster_failed_compute_gives_the_lease_back(cluster_cache, caplog):
    def broken():
        raise RuntimeError("template error")

    with pytest.raises(RuntimeError):
        cached("home", broken, cache="cluster")
    with caplog.at_level(logging.ERROR, logger="signalhooks"):
        # A value that cannot be pickled: returned, not stored, the lease given back.
        unpicklable = cached("home", lambda: lambda: None, cache="cluster")
    assert callable(unpicklable)
    assert "storing on cache 'cluster' failed" in caplog.text
    with override_settings(SIGNALHOOKS={"LEASE_WAIT": 0}):
        assert cached("home", lambda: "page", cache="cluster") == "page"
    assert cached("home", lambda: "not called", cache="cluster") == "page"


def test_cluster_timeouts(cluster, cluster_cache):
    assert cached("home", lambda: 1, timeout=0, cache="cluster") == 1
    assert cached("home", lambda: 2, timeout=0, cache="cluster") == 2  # nothing was stored
    assert stored(cluster, cluster_cache, "home") == []
    assert cached("forever", lambda: 3, timeout=None, cache="cluster") == 3
    assert cached("minute", lambda: 4, timeout=60, cache="cluster") == 4
    [forever] = stored(cluster, cluster_cache, "forever")
    [minute] = stored(cluster, cluster_cache, "minute")
    assert cluster.node(forever).ttl(forever) == -1
    assert 0 < cluster.node(minute).ttl(minute) <= 60
    assert cached("minute", lambda: "not called", timeout=60, cache="cluster") == 4


def test_cluster_patterns_reach_cached_values(cluster_cache):
    invalidate(Entry, patterns=["list:{slug}:*"], cache="cluster")
    for n in range(10):
        cached(f"list:a:page-{n}", lambda: "v1", cache="cluster")
    Entry.objects.create(title="a", slug="a")
    assert {cached(f"list:a:page-{n}", lambda: "v2", cache="cluster") for n in range(10)} == {"v2"}


def test_cluster_after_the_nodes_forgot_the_scripts(cluster, cluster_cache):
    assert cached("home", lambda: "page", tags=["entries"], cache="cluster") == "page"
    for node in cluster.nodes:
        node.script_flush()
    assert cached("home", lambda: "not called", tags=["entries"], cache="cluster") == "page"


# -- restarts: a node crashed and started again from its last SAVE ---------------------


def test_cluster_value_node_restored_from_a_snapshot_serves_nothing_invalidated(
    cluster, cluster_cache, caplog
):
    epoch_node = cluster.holding(cluster_cache.make_key(EPOCH_KEY))
    key = key_on(cluster, cluster_cache, "home-", lambda port: port != epoch_node)
    invalidate(Entry, keys=[key], cache="cluster")
    assert cached(key, lambda: "before", cache="cluster") == "before"
    value_node = node_of(cluster, cluster_cache, key)
    cluster.node_at(value_node).save()  # the snapshot holds the value
    Entry.objects.create(title="a", slug="a")  # deletes it
    cluster.restart_from_snapshot(value_node)
    assert stored(cluster, cluster_cache, key) != []  # back from the snapshot
    with caplog.at_level(logging.ERROR, logger="signalhooks"):
        assert cached(key, lambda: "after", cache="cluster") == "after"
    assert caplog.records == []  # read from the cluster, not computed for an error
    assert cached(key, lambda: "not called", cache="cluster") == "after"


def test_cluster_generation_node_restored_from_a_snapshot_serves_nothing_invalidated(
    cluster, cluster_cache, caplog
):
    epoch_node = cluster.holding(cluster_cache.make_key(EPOCH_KEY))
    tag = next(
        f"author:{n}"
        for n in range(1000)
        if cluster.holding(cluster_cache.make_key(tag_key(f"author:{n}"))) != epoch_node
    )
    tag_node = cluster.holding(cluster_cache.make_key(tag_key(tag)))
    key = key_on(cluster, cluster_cache, "page-", lambda port: port != tag_node)
    invalidate(Entry, tags=["author:{author_id}"], cache="cluster")
    author = int(tag.split(":")[1])
    assert cached(key, lambda: "before", tags=[tag], cache="cluster") == "before"
    cluster.node_at(tag_node).save()  # the snapshot holds the old generation
    Entry.objects.create(title="a", slug="a", author_id=author)  # bumps it
    assert cached(key, lambda: "bumped", tags=[tag], cache="cluster") == "bumped"
    cluster.restart_from_snapshot(tag_node)  # the generation goes back; "before" is there
    with caplog.at_level(logging.ERROR, logger="signalhooks"):
        assert cached(key, lambda: "after", tags=[tag], cache="cluster") == "after"
    assert caplog.records == []
    assert cached(key, lambda: "not called", tags=[tag], cache="cluster") == "after"


def test_cluster_epoch_node_restored_from_a_snapshot_serves_nothing_invalidated(
    cluster, cluster_cache, caplog
):
    epoch_node = cluster.holding(cluster_cache.make_key(EPOCH_KEY))
    key = key_on(cluster, cluster_cache, "home-", lambda port: port != epoch_node)
    assert cached(key, lambda: "before", cache="cluster") == "before"
    cluster.node_at(epoch_node).save()  # the snapshot holds the epoch "before" is under
    call_command("signalhooks", "epoch", "--cache", "cluster", stdout=io.StringIO())
    assert cached(key, lambda: "new epoch", cache="cluster") == "new epoch"
    cluster.restart_from_snapshot(epoch_node)  # the epoch goes back to the one of "before"
    assert len(stored(cluster, cluster_cache, key)) == 2  # "before" is still on its node
    with caplog.at_level(logging.ERROR, logger="signalhooks"):
        assert cached(key, lambda: "after", cache="cluster") == "after"
    assert caplog.records == []
    assert cached(key, lambda: "not called", cache="cluster") == "after"


def test_cluster_lease_taken_before_the_value_node_restarted_cannot_store(
    cluster, cluster_cache, caplog
):
    epoch_node = cluster.holding(cluster_cache.make_key(EPOCH_KEY))
    key = key_on(cluster, cluster_cache, "home-", lambda port: port != epoch_node)
    value_node = node_of(cluster, cluster_cache, key)
    invalidate(Entry, keys=[key], cache="cluster")
    Entry.objects.create(title="first", slug="a")
    computing, restarted = threading.Event(), threading.Event()
    results = []

    def slow_render():
        titles = render_titles()
        computing.set()
        assert restarted.wait(60)
        return titles

    def request():
        try:
            results.append(cached(key, slow_render, cache="cluster"))
        finally:
            connection.close()

    thread = threading.Thread(target=request)
    thread.start()
    assert computing.wait(10)
    with caplog.at_level(logging.ERROR, logger="signalhooks"):
        try:
            cluster.node_at(value_node).save()  # the snapshot holds the lease
            Entry.objects.create(title="second", slug="b")  # deletes it: the store is cancelled
            # ... and the snapshot brings it back. (Here, not in a thread: a node dies
            # with the thread that started it.)
            cluster.restart_from_snapshot(value_node)
        finally:
            restarted.set()
            thread.join()
    assert results == [["first"]]  # returned, not stored
    assert caplog.records == []  # refused by the node, not an error
    assert stored(cluster, cluster_cache, key) == []
    assert cached(key, render_titles, cache="cluster") == ["first", "second"]


def test_cluster_stale_copy_written_before_a_restart_is_not_served_after_it(cluster, cluster_cache):
    epoch_node = cluster.holding(cluster_cache.make_key(EPOCH_KEY))
    key = key_on(cluster, cluster_cache, "home-", lambda port: port != epoch_node)
    value_node = node_of(cluster, cluster_cache, key)
    invalidate(Entry, keys=[key], cache="cluster")

    def page(compute):
        return cached(key, compute, cache="cluster", stale=True)

    assert page(lambda: "v1") == "v1"
    cluster.node_at(value_node).save()  # the snapshot holds v1 and its stale copy
    Entry.objects.create(title="a", slug="a")  # deletes v1
    assert page(lambda: "v2") == "v2"  # what users see from now on
    cluster.restart_from_snapshot(value_node)  # v2 is lost; v1 and its stale copy are back
    holding, done = threading.Event(), threading.Event()

    def slow():
        holding.set()
        assert done.wait(10)
        return "v3"

    holder = threading.Thread(target=lambda: page(slow))
    holder.start()
    assert holding.wait(10)
    try:
        with override_settings(SIGNALHOOKS={"LEASE_WAIT": 0.05}):
            # Not v1, older than what was served before the crash: computed instead.
            assert page(lambda: "impatient") == "impatient"
    finally:
        done.set()
        holder.join()
    assert page(lambda: "not called") == "v3"


def test_cluster_early_recomputes_one_caller_at_a_time(cluster_cache):
    render = Renders()
    assert cached("hot", render, timeout=60, early=ALWAYS, cache="cluster") == 1
    results = []
    start = threading.Barrier(8)

    def recompute():
        # Holds the lease until the seven others were served: none of them may recompute.
        assert wait_until(lambda: len(results) == 7)
        return render()

    def request():
        start.wait()
        results.append(cached("hot", recompute, timeout=60, early=ALWAYS, cache="cluster"))

    run_threads(8, request)
    assert render.count == 2
    assert sorted(results) == [1] * 7 + [2]
    assert cached("hot", lambda: "not called", timeout=60, cache="cluster") == 2


def test_cluster_early_far_from_expiry_or_without_one_is_a_plain_hit(cluster_cache):
    render = Renders()
    for _ in range(10):
        assert cached("hot", render, timeout=60, early=1.0, cache="cluster") == 1
        assert cached("forever", render, timeout=None, early=ALWAYS, cache="cluster") == 2
    assert render.count == 2
