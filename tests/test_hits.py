"""cached() hits in one GET, with the epoch and generations held in process (client tracking).

Every test runs against a Redis server of its own (``flaky``), which it restarts,
restores from a snapshot, flushes or whose tracking connection it kills.
"""

from __future__ import annotations

import multiprocessing
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import override_settings

from signalhooks import cached, hits, invalidate, retry
from signalhooks.keys import tag_key
from tests.cache_helpers import stored_key
from tests.cacheapp.models import Entry
from tests.redis_counting import CountingConnection
from tests.redis_server import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)


def unexpected():
    raise AssertionError("computed on a hit")


def warm(key, tags=(), value="old"):
    """Cache ``value``, then hit it once: the numbers are held, a hit is one GET from now."""
    assert cached(key, lambda: value, tags=tags, cache="flaky") == value
    assert cached(key, unexpected, tags=tags, cache="flaky") == value


def calls(server, command):
    stats = server.client().info("commandstats")
    return stats.get(f"cmdstat_{command}", {}).get("calls", 0)


def tracking_clients(server):
    return [c for c in server.client().client_list() if "t" in c["flags"]]


def test_hits_a_hit_with_tags_is_one_get(flaky):
    server, backend = flaky
    warm("list", tags=["entries", "author:1"])
    gets, scripts = calls(server, "get"), calls(server, "evalsha")
    trips = CountingConnection.round_trips
    assert cached("list", unexpected, tags=["entries", "author:1"], cache="flaky") == "old"
    assert CountingConnection.round_trips - trips == 1
    assert (calls(server, "get") - gets, calls(server, "evalsha") - scripts) == (1, 0)
    assert len(tracking_clients(server)) == 1


def test_hits_a_tag_bumped_by_another_process_is_seen_by_the_next_hit(flaky):
    server, backend = flaky
    warm("list", tags=["entries"])
    generation = backend.make_key(tag_key("entries"))
    bump = f"import redis; redis.Redis.from_url({server.url!r}).incr({generation!r})"
    subprocess.run([sys.executable, "-c", bump], check=True)
    assert cached("list", lambda: "new", tags=["entries"], cache="flaky") == "new"
    assert cached("list", unexpected, tags=["entries"], cache="flaky") == "new"


def test_hits_an_invalidation_by_a_flush_is_seen_by_the_next_hit(flaky):
    invalidate(Entry, keys=["entry"], tags=["entries"], cache="flaky")
    warm("entry")
    warm("list", tags=["entries"])
    Entry.objects.create(title="a", slug="a")
    assert cached("entry", lambda: "new", cache="flaky") == "new"
    assert cached("list", lambda: "new", tags=["entries"], cache="flaky") == "new"


def test_hits_a_server_restored_from_a_snapshot_file_serves_nothing_from_before(flaky, tmp_path):
    server, backend = flaky
    invalidate(Entry, keys=["entry"], tags=["entries"], cache="flaky")
    warm("entry")
    warm("list", tags=["entries"])
    server.client().save()  # both values, the epoch and the generation
    dump = Path(server.directory) / "dump.rdb"
    shutil.copy(dump, tmp_path / "dump.rdb")
    Entry.objects.create(title="a", slug="a")  # deletes "entry", bumps "entries"
    warm("entry", value="new")
    warm("list", tags=["entries"], value="new")
    server.kill()
    shutil.copy(tmp_path / "dump.rdb", dump)  # restore the copy taken before the change
    server.start()
    # The old values and the numbers they were stored under are back.
    assert server.client().get(backend.make_key(stored_key("list", backend))) is not None
    assert cached("entry", lambda: "fresh", cache="flaky") == "fresh"
    assert cached("list", lambda: "fresh", tags=["entries"], cache="flaky") == "fresh"
    assert cached("list", unexpected, tags=["entries"], cache="flaky") == "fresh"


def test_hits_a_killed_tracking_connection_loses_no_invalidation(flaky):
    server, backend = flaky
    warm("list", tags=["entries"])
    admin = server.client()
    [tracking] = tracking_clients(server)
    admin.client_kill_filter(_id=tracking["id"])
    admin.incr(backend.make_key(tag_key("entries")))  # its message had no connection to go to
    assert cached("list", lambda: "new", tags=["entries"], cache="flaky") == "new"
    assert cached("list", unexpected, tags=["entries"], cache="flaky") == "new"
    [again] = tracking_clients(server)
    assert again["id"] != tracking["id"]


def test_hits_a_flushed_database_drops_every_number_held(flaky):
    server, backend = flaky
    warm("list", tags=["entries"])
    old = backend.make_key(stored_key("list", backend))
    admin = server.client()
    admin.flushdb()
    # A value under the old numbers, written back behind the numbers' back.
    admin.set(old, backend.client.encode("stale"))
    assert cached("list", lambda: "new", tags=["entries"], cache="flaky") == "new"
    assert cached("list", unexpected, tags=["entries"], cache="flaky") == "new"


def test_hits_after_the_server_forgot_the_scripts(flaky):
    server, backend = flaky
    warm("list", tags=["entries"])
    admin = server.client()
    admin.incr(backend.make_key(tag_key("entries")))  # the numbers are read again…
    admin.script_flush()  # …by a script the server no longer has
    assert cached("list", lambda: "new", tags=["entries"], cache="flaky") == "new"
    assert cached("list", unexpected, tags=["entries"], cache="flaky") == "new"


def _hit_in_child(results):
    results.put(cached("list", lambda: "computed", tags=["entries"], cache="flaky"))


def test_hits_a_forked_child_tracks_on_a_connection_of_its_own(flaky):
    server, backend = flaky
    warm("list", tags=["entries"])
    [parent] = tracking_clients(server)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_hit_in_child, args=(results,))
    child.start()
    assert results.get(timeout=30) == "old"
    child.join(30)
    assert child.exitcode == 0
    # The parent's connection still tracks (the child never used it).
    assert [c["id"] for c in tracking_clients(server)] == [parent["id"]]
    server.client().incr(backend.make_key(tag_key("entries")))
    assert cached("list", lambda: "new", tags=["entries"], cache="flaky") == "new"


@pytest.fixture
def untracked():
    """A cache (alias ``untracked``) on a server that refuses CLIENT (so: no tracking)."""
    server = RedisServer(options=("--rename-command", "CLIENT", "")).start()
    options = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": server.url}
    retry.mark_delivered(["untracked"])
    try:
        with override_settings(CACHES={**settings.CACHES, "untracked": options}):
            yield server
    finally:
        server.stop()


def test_hits_where_tracking_is_refused_the_scripts_answer(untracked):
    server = untracked
    assert cached("list", lambda: "old", tags=["entries"], cache="untracked") == "old"
    scripts = calls(server, "evalsha")
    assert cached("list", unexpected, tags=["entries"], cache="untracked") == "old"
    assert calls(server, "evalsha") - scripts == 1
    server.client().incr(caches["untracked"].make_key(tag_key("entries")))
    assert cached("list", lambda: "new", tags=["entries"], cache="untracked") == "new"


def test_hits_an_error_reply_of_an_early_hit_leaves_no_reply_unread(flaky):
    server, backend = flaky
    warm("hot")
    warm("other")
    broken = backend.make_key(stored_key("hot", backend))
    admin = server.client()
    admin.delete(broken)
    admin.hset(broken, "not", "a string")  # the GET of an early hit gets WRONGTYPE
    assert cached("hot", lambda: "computed", timeout=60, early=1.0, cache="flaky") == "computed"
    # The connection was dropped with the replies after the error: nothing read out of turn.
    assert cached("other", unexpected, timeout=60, early=1.0, cache="flaky") == "old"
    assert cached("other", unexpected, cache="flaky") == "old"


def test_hits_hold_at_most_max_numbers(flaky, monkeypatch):
    monkeypatch.setattr(hits, "MAX_NUMBERS", 3)  # the epoch and two generations
    for tag in ("a", "b"):
        warm(f"page:{tag}", tags=[tag])  # reading b's numbers dropped a's: four were too many
    trips = CountingConnection.round_trips
    assert cached("page:b", unexpected, tags=["b"], cache="flaky") == "old"
    assert CountingConnection.round_trips - trips == 1
    assert cached("page:a", unexpected, tags=["a"], cache="flaky") == "old"
    assert CountingConnection.round_trips - trips == 3  # the numbers read again, then the GET


def test_hits_a_key_beyond_ascii_is_one_get(flaky):
    warm("café:ünïcode", tags=["catégorie"])
    trips = CountingConnection.round_trips
    assert cached("café:ünïcode", unexpected, tags=["catégorie"], cache="flaky") == "old"
    assert CountingConnection.round_trips - trips == 1
    assert cached("cafe", lambda: "other", tags=["catégorie"], cache="flaky") == "other"
