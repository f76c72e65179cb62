"""The flush with ``SIGNALHOOKS["WAIT_REPLICAS"]``: Redis WAIT in the flush pipeline, on a
real primary and replica; a flush fewer replicas confirmed goes to the retry store.
"""

from __future__ import annotations

import logging
import signal

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import override_settings

from signalhooks import breaker, cached, invalidate, retry
from signalhooks.invalidation import pending_retries
from tests.cacheapp.models import Entry
from tests.redis_counting import CountingConnection
from tests.redis_server import RedisServer
from tests.redis_topologies import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ALIAS = "waited"
#: Where a test expects the replica to confirm: a margin over the default 100 ms for a
#: test machine that other work keeps busy.
CONFIRMED = {"WAIT_REPLICAS": 1, "WAIT_TIMEOUT": 0.5}


def cache_on(server):
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": server.url,
        "KEY_PREFIX": "waited",
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
            "CONNECTION_POOL_KWARGS": {"connection_class": CountingConnection},
        },
    }


def wait_confirming(primary):
    """Wait until a replica of ``primary`` confirms writes (WAIT).

    After a sync the primary streams to the replica only from the replica's first ACK,
    which Redis sends once a second: until then WAIT counts none.
    """
    client = primary.client()

    def confirmed():
        client.set("probe", 1)
        return client.wait(1, 100) == 1

    wait_for(confirmed, f"a replica confirming the writes of port {primary.port}")


@pytest.fixture
def servers():
    """A primary and a real replica of it; cache ``waited`` writes to the primary."""
    primary = RedisServer().start()
    primary.client().config_set("repl-diskless-sync-delay", 0)  # sync now, not in 5 s
    replica = RedisServer(replica_of=primary).start()
    replica.client().config_set("repl-diskless-sync-delay", 0)  # once it is the primary
    retry.mark_delivered([ALIAS])  # its store is empty: no first-flush SELECT
    try:
        with override_settings(CACHES={**settings.CACHES, ALIAS: cache_on(primary)}):
            replica.wait_in_sync()
            wait_confirming(primary)
            caches[ALIAS].get("warm-up")  # connect (and its handshake) before counting
            yield primary, replica
    finally:
        if replica.process is not None:
            replica.process.send_signal(signal.SIGCONT)
        replica.stop()
        primary.stop()


def holding(server, *keys):
    """Return which of ``keys`` (cache keys) ``server`` holds."""
    client = server.client()
    return {key for key in keys if client.exists(caches[ALIAS].make_key(key))}


def put(server, *keys):
    server.client().mset({caches[ALIAS].make_key(key): b"cached" for key in keys})


def waits(server):
    stats = server.client().info("commandstats")
    return stats.get("cmdstat_wait", {}).get("calls", 0)


def failures(caplog):
    return [r for r in caplog.records if r.name == "signalhooks" and "failed" in r.getMessage()]


def test_confirmed_flush_is_delivered_in_one_round_trip(servers):
    primary, replica = servers
    invalidate(Entry, keys=["entry:{slug}"], tags=["entries"], cache=ALIAS)
    Entry.objects.create(title="z", slug="z")  # the server now has the flush script
    put(primary, "entry:a")
    replica.wait_in_sync()
    trips, before = CountingConnection.round_trips, waits(primary)
    with override_settings(SIGNALHOOKS=CONFIRMED):
        Entry.objects.create(title="a", slug="a")
    assert CountingConnection.round_trips - trips == 1  # WAIT is in the flush pipeline
    assert waits(primary) == before + 1
    # Confirmed: the replica has the DEL already, no waiting for it here.
    assert holding(replica, "entry:a") == holding(primary, "entry:a") == set()
    assert pending_retries(ALIAS) == 0


def test_without_the_setting_no_wait(servers):
    primary, _ = servers
    invalidate(Entry, keys=["entry:{slug}"], cache=ALIAS)
    before = waits(primary)
    Entry.objects.create(title="a", slug="a")
    assert waits(primary) == before


def test_flush_no_replica_confirmed_goes_to_the_retry_store(servers, caplog):
    primary, replica = servers
    invalidate(Entry, keys=["entry:{slug}"], cache=ALIAS)
    put(primary, "entry:a", "entry:b")
    replica.wait_in_sync()
    replica.process.send_signal(signal.SIGSTOP)  # hung: it confirms nothing
    try:
        with (
            override_settings(SIGNALHOOKS={"WAIT_REPLICAS": 1, "WAIT_TIMEOUT": 0.05}),
            caplog.at_level(logging.ERROR, logger="signalhooks"),
        ):
            Entry.objects.create(title="a", slug="a")
            Entry.objects.create(title="b", slug="b")
            assert not breaker.is_open(ALIAS)  # not an outage: the next flush tries again
    finally:
        replica.process.send_signal(signal.SIGCONT)
    assert holding(primary, "entry:a", "entry:b") == set()  # sent, but not confirmed
    assert pending_retries(ALIAS) == 2
    [record] = failures(caplog)  # rate-limited: one for both
    assert (
        "invalidating on cache 'waited' failed (NotReplicated: 0 of WAIT_REPLICAS=1 "
        "replica(s) confirmed the flush within 50 ms)" in record.getMessage()
    )
    # As a failover would: the primary the next flush reaches still holds them.
    put(primary, "entry:a", "entry:b", "entry:c")
    replica.wait_in_sync()
    with override_settings(SIGNALHOOKS=CONFIRMED):
        Entry.objects.create(title="c", slug="c")
    assert holding(primary, "entry:a", "entry:b", "entry:c") == set()
    assert holding(replica, "entry:a", "entry:b", "entry:c") == set()
    assert pending_retries(ALIAS) == 0


def test_wait_timeout_zero_does_not_wait_for_ever(servers):
    primary, replica = servers
    invalidate(Entry, keys=["entry:{slug}"], cache=ALIAS)
    replica.kill()
    # WAIT's own 0 means no timeout: the socket timeout would fire and open the breaker.
    with override_settings(SIGNALHOOKS={"WAIT_REPLICAS": 1, "WAIT_TIMEOUT": 0}):
        Entry.objects.create(title="a", slug="a")
    assert not breaker.is_open(ALIAS)
    assert pending_retries(ALIAS) == 1


def test_every_scan_page_of_a_pattern_waits(servers):
    primary, replica = servers
    invalidate(Entry, patterns=["page:{slug}:*"], cache=ALIAS)
    Entry.objects.create(title="z", slug="z")  # the server now has the scan script
    put(primary, *(f"page:p:{i}" for i in range(3000)))
    replica.wait_in_sync()
    trips, before = CountingConnection.round_trips, waits(primary)
    with override_settings(SIGNALHOOKS={**CONFIRMED, "PATTERN_SCAN_COUNT": 500}):
        Entry.objects.create(title="p", slug="p")
    trips = CountingConnection.round_trips - trips
    assert trips > 3
    assert waits(primary) - before == trips  # one WAIT per pipeline
    assert holding(replica, *(f"page:p:{i}" for i in range(3000))) == set()
    assert pending_retries(ALIAS) == 0


def test_wait_after_the_server_forgot_the_scripts(servers):
    primary, replica = servers
    invalidate(Entry, keys=["entry:{slug}"], cache=ALIAS)
    put(primary, "entry:a")
    primary.client().script_flush()
    with override_settings(SIGNALHOOKS=CONFIRMED):
        Entry.objects.create(title="a", slug="a")  # by SHA, then the text: WAIT each time
    assert holding(replica, "entry:a") == set()
    assert pending_retries(ALIAS) == 0


# -- a failover by hand, step by step as a sentinel does it --------------------------------


def promote(replica):
    """REPLICAOF NO ONE, as a sentinel tells the replica it promotes."""
    replica.client().replicaof("NO", "ONE")


def demote(old, new):
    """REPLICAOF the new primary, as a sentinel tells the old one last; wait for its resync."""
    old.client().replicaof("127.0.0.1", new.port)
    client = old.client()
    wait_for(
        lambda: (
            client.info("replication")["master_link_status"] == "up"
            and client.info("replication")["master_sync_in_progress"] == 0
        ),
        "the old primary resynced from the new one",
    )
    wait_confirming(new)


def test_failover_loses_a_delete_the_old_primary_acknowledged_without_wait(servers):
    old, new = servers
    invalidate(Entry, keys=["entry:{slug}"], cache=ALIAS)
    put(old, "entry:a")
    new.wait_in_sync()
    promote(new)
    Entry.objects.create(title="a", slug="a")  # the old primary still acknowledges the DEL
    assert pending_retries(ALIAS) == 0
    demote(old, new)
    # Its resync discarded the DEL: the stale key is back everywhere, nothing to retry.
    assert holding(new, "entry:a") == holding(old, "entry:a") == {"entry:a"}
    assert pending_retries(ALIAS) == 0


def test_failover_with_wait_retries_on_the_new_primary(servers):
    old, new = servers
    invalidate(Entry, keys=["entry:{slug}"], cache=ALIAS)
    put(old, "entry:a")
    new.wait_in_sync()
    promote(new)
    with override_settings(SIGNALHOOKS=CONFIRMED):
        Entry.objects.create(title="a", slug="a")  # acknowledged, but no replica confirmed it
        assert pending_retries(ALIAS) == 1
        demote(old, new)
        assert holding(new, "entry:a") == {"entry:a"}
        # What a Sentinel client does: the next flush goes to the new primary.
        with override_settings(CACHES={**settings.CACHES, ALIAS: cache_on(new)}):
            Entry.objects.create(title="b", slug="b")
    assert holding(new, "entry:a") == holding(old, "entry:a") == set()
    assert pending_retries(ALIAS) == 0


def test_cached_on_a_demoted_primary_serves_nothing_it_lost(servers):
    old, new = servers
    invalidate(Entry, keys=["home"], cache=ALIAS)
    assert cached("home", lambda: "old", cache=ALIAS) == "old"
    new.wait_in_sync()
    promote(new)
    Entry.objects.create(title="a", slug="a")  # the old primary acknowledges the DEL...
    demote(old, new)  # ...and its resync brings the value back
    # A connection still leads to the old primary, now a replica. Its copy of the epoch
    # names its own run_id, so a script run there would serve the value: it refuses.
    assert cached("home", lambda: "fresh", cache=ALIAS) == "fresh"
    with override_settings(CACHES={**settings.CACHES, ALIAS: cache_on(new)}):
        # The new primary never ran a script: it starts a new epoch on the first.
        assert cached("home", lambda: "fresh", cache=ALIAS) == "fresh"
        assert cached("home", lambda: "not called", cache=ALIAS) == "fresh"


# -- how the flush sends names -------------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [
        ["plain:1", "plain:2"],
        ["clé:ü", "plain:3"],  # not ASCII: packed from the arguments, byte lengths
        ["nul:\0:1", "nul:2\0", ""],  # a NUL (the list separator) and an empty name
        [f"many:{i}" for i in range(2_345)],  # more keys than one script call takes
    ],
    ids=["ascii", "not ascii", "NUL", "chunked"],
)
@pytest.mark.parametrize("cache_options", [{}, {"KEY_FUNCTION": "tests.test_wire.shouting_key"}])
def test_flush_deletes_every_name_and_bumps_every_tag(names, cache_options):
    from signalhooks.invalidation import send
    from signalhooks.keys import Invalidation, tag_key

    with override_settings(CACHES={"default": {**settings.CACHES["default"], **cache_options}}):
        cache = caches["default"]
        cache.set_many(dict.fromkeys(names, "cached"))
        tags = [f"t:{name}" for name in names[:3]]
        for tag in tags:
            cache.set(tag_key(tag), 5, timeout=None)
        assert cache.get_many(names) == dict.fromkeys(names, "cached")
        assert send("default", Invalidation(set(names), set(tags), set()))
        assert cache.get_many(names) == {}
        assert [cache.get(tag_key(tag)) for tag in tags] == [6] * len(tags)
