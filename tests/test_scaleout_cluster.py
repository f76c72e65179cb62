"""Keys, tags, patterns and cached() on a real three-primary Redis Cluster.

The backend is django-valkey's ``ClusterValkeyCache`` as it comes (valkey-py speaks
the Redis protocol; Redis 7 serves it): the flush reaches it through Django's cache
API, and the cluster client splits a multi-key ``DEL`` by slot into one pipeline per
node, so no adapter is needed. ``cached()``'s leases and restart checks on the cluster
are tests/test_cluster.py.
"""

from __future__ import annotations

import importlib.util
import logging
import os

import pytest

from signalhooks import cached, invalidate
from signalhooks.epoch import EPOCH_KEY
from signalhooks.invalidation import send
from signalhooks.keys import Invalidation, tag_key
from tests.cacheapp.models import Entry

pytestmark = pytest.mark.django_db(transaction=True)

if importlib.util.find_spec("django_valkey") is None and not os.environ.get("CI"):
    # Under CI the test dependencies include it: the import below fails instead.
    pytest.skip("pip install django-valkey to run the cluster tests", allow_module_level=True)

from tests import cluster_rig  # noqa: E402
from tests.cluster_rig import NodeCounting  # noqa: E402

cluster = cluster_rig.cluster
cluster_cache = cluster_rig.cluster_cache


def spread(cluster, cache, prefix, count=30):
    """Return ``count`` keys starting with ``prefix``, on every primary."""
    keys = [f"{prefix}{i}" for i in range(count)]
    assert {cluster.holding(cache.make_key(k)) for k in keys} == set(cluster.ports)
    return keys


def test_cluster_keys_of_one_flush_on_every_node_are_deleted(cluster, cluster_cache, caplog):
    invalidate(Entry, keys=[f"entry:{{pk}}:{i}" for i in range(12)], cache="cluster")
    entry = Entry.objects.create(title="a", slug="a")
    keys = [f"entry:{entry.pk}:{i}" for i in range(12)]
    assert {cluster.holding(cluster_cache.make_key(k)) for k in keys} == set(cluster.ports)
    cluster_cache.set_many(dict.fromkeys(keys, "cached"))
    with caplog.at_level(logging.ERROR, logger="signalhooks"):
        entry.save()
    assert caplog.records == []  # no CROSSSLOT, nothing kept for a retry
    assert cluster_cache.get_many(keys) == {}


def test_cluster_flush_sends_one_pipeline_per_node(cluster, cluster_cache):
    invalidate(Entry, keys=[f"entry:{{pk}}:{i}" for i in range(12)], cache="cluster")
    entry = Entry.objects.create(title="a", slug="a")  # connects to every node
    keys = [f"entry:{entry.pk}:{i}" for i in range(12)]
    cluster_cache.set_many(dict.fromkeys(keys, "cached"))
    NodeCounting.sends.clear()
    entry.save()
    # One pipeline per node, and one read of the epoch on its node (a script there:
    # the deletes of the other slots cannot go in the same round trip).
    expected = dict.fromkeys(cluster.ports, 1)
    expected[cluster.holding(cluster_cache.make_key(EPOCH_KEY))] += 1
    assert NodeCounting.sends == expected
    assert cluster_cache.get_many(keys) == {}


def spread_tags(cluster, cache, prefix, count=30):
    """Return ``count`` tags starting with ``prefix`` whose generations are on every primary."""
    tags = [f"{prefix}{i}" for i in range(count)]
    assert {cluster.holding(cache.make_key(tag_key(t))) for t in tags} == set(cluster.ports)
    return tags


def generations(cluster, cache, tags):
    """Return the generation of each of ``tags`` as the cluster holds it (None: missing)."""
    names = [cache.make_key(tag_key(tag)) for tag in tags]
    return [cluster.node(name).get(name) for name in names]


def test_cluster_flush_of_keys_and_tags_is_one_pipeline_per_node(cluster, cluster_cache):
    tags = spread_tags(cluster, cluster_cache, "author:")
    invalidate(
        Entry,
        keys=[f"entry:{{pk}}:{i}" for i in range(12)],
        tags=[*tags, "never-read"],
        cache="cluster",
    )
    cached("page", lambda: "v1", tags=tags, cache="cluster")  # the generations exist
    entry = Entry.objects.create(title="a", slug="a")  # connects to every node
    keys = [f"entry:{entry.pk}:{i}" for i in range(12)]
    cluster_cache.set_many(dict.fromkeys(keys, "cached"))
    before = [int(number) for number in generations(cluster, cluster_cache, tags)]
    NodeCounting.sends.clear()
    entry.save()
    # The epoch (a script on its node: the deletes depend on it), then one pipeline
    # holding the deletes and the tag bumps: one send per node, all nodes at once.
    expected = dict.fromkeys(cluster.ports, 1)
    expected[cluster.holding(cluster_cache.make_key(EPOCH_KEY))] += 1
    assert NodeCounting.sends == expected
    assert cluster_cache.get_many(keys) == {}
    after = [int(number) for number in generations(cluster, cluster_cache, tags)]
    assert after == [number + 1 for number in before]
    # A generation never read is not created: cached() starts it at the clock.
    assert generations(cluster, cluster_cache, ["never-read"]) == [None]
    assert cached("page", lambda: "v2", tags=tags, cache="cluster") == "v2"


def test_cluster_flush_of_tags_alone_reads_no_epoch(cluster, cluster_cache):
    tags = spread_tags(cluster, cluster_cache, "site:", count=3)
    cached("page", lambda: "v1", tags=tags, cache="cluster")
    nodes = {cluster.holding(cluster_cache.make_key(tag_key(tag))) for tag in tags}
    assert send("cluster", Invalidation(tags=set(tags)))  # the nodes learn the script
    NodeCounting.sends.clear()
    assert send("cluster", Invalidation(tags=set(tags)))
    assert NodeCounting.sends == dict.fromkeys(nodes, 1)
    assert cached("page", lambda: "v2", tags=tags, cache="cluster") == "v2"


def test_cluster_new_epoch_is_one_round_trip(cluster, cluster_cache):
    assert send("cluster", Invalidation(), new_epoch=True)  # the node learns the script
    assert cached("page", lambda: "v1", cache="cluster") == "v1"
    NodeCounting.sends.clear()
    assert send("cluster", Invalidation(), new_epoch=True)
    assert NodeCounting.sends == {cluster.holding(cluster_cache.make_key(EPOCH_KEY)): 1}
    assert cached("page", lambda: "v2", cache="cluster") == "v2"


def test_cluster_flush_after_the_nodes_forgot_the_scripts(cluster, cluster_cache):
    tags = spread_tags(cluster, cluster_cache, "author:")
    invalidate(Entry, keys=["home"], tags=tags, cache="cluster")
    assert cached("home", lambda: "v1", cache="cluster") == "v1"
    assert cached("tagged", lambda: "v1", tags=tags, cache="cluster") == "v1"
    for node in cluster.nodes:
        node.script_flush()
    Entry.objects.create(title="a", slug="a")
    assert cached("home", lambda: "v2", cache="cluster") == "v2"
    assert cached("tagged", lambda: "v2", tags=tags, cache="cluster") == "v2"


def test_cluster_patterns_are_scanned_on_every_primary(cluster, cluster_cache):
    invalidate(Entry, patterns=["list:{slug}:*"], cache="cluster")
    keys = spread(cluster, cluster_cache, "list:a:page-")
    cluster_cache.set_many(dict.fromkeys([*keys, "list:b:page-1"], "cached"))
    Entry.objects.create(title="a", slug="a")
    assert cluster_cache.get_many(keys) == {}
    assert cluster_cache.get("list:b:page-1") == "cached"


def test_cluster_tags_make_cached_values_unreachable(cluster, cluster_cache):
    invalidate(Entry, tags=["author:{author_id}"], cache="cluster")
    calls = []

    def render():
        calls.append(1)
        return f"page {len(calls)}"

    def page():
        return cached("author-page", render, tags=["author:7", "site"], cache="cluster")

    assert page() == "page 1"
    assert page() == "page 1"
    Entry.objects.create(title="a", slug="a", author_id=8)  # another author's tag
    assert page() == "page 1"
    Entry.objects.create(title="b", slug="b", author_id=7)
    assert page() == "page 2"
