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
