"""A real three-primary Redis Cluster behind django-valkey's ``ClusterValkeyCache``.

Import this only once django-valkey is known to be installed (the test modules skip
without it, outside CI).
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.cache import caches
from valkey.connection import Connection as ValkeyConnection

from tests.redis_topologies import ClusterTopology


class NodeCounting(ValkeyConnection):
    """A valkey-py connection counting round trips (packed sends) per node port."""

    sends: Counter[int] = Counter()

    def send_packed_command(self, command, check_health=True):
        NodeCounting.sends[self.port] += 1
        super().send_packed_command(command, check_health)


@pytest.fixture(scope="module")
def cluster():
    topology = ClusterTopology().start()
    yield topology
    topology.stop()


@pytest.fixture
def cluster_cache(cluster, settings):
    """The cache alias ``cluster`` on the cluster, emptied after the test."""
    settings.CACHES = {
        **settings.CACHES,
        "cluster": {
            "BACKEND": "django_valkey.cluster_cache.cache.ClusterValkeyCache",
            "LOCATION": cluster.url,
            "KEY_PREFIX": "cluster-test",
            "OPTIONS": {"BASE_CLIENT_KWARGS": {"connection_class": NodeCounting}},
        },
    }
    cache = caches["cluster"]
    yield cache
    for node in cluster.nodes:
        node.flushall()
