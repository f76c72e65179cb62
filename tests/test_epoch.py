from __future__ import annotations

import pytest
from django.core.cache import caches
from django.core.management import call_command

from signalhooks import cached, invalidate
from signalhooks.epoch import EPOCH_KEY
from tests.cacheapp.models import Entry

pytestmark = pytest.mark.django_db(transaction=True)


def test_epoch_a_server_restored_from_a_snapshot_serves_nothing_from_before(flaky):
    server, backend = flaky
    invalidate(Entry, keys=["entry"], tags=["entries"], cache="flaky")
    assert cached("entry", lambda: "old", cache="flaky") == "old"
    assert cached("list", lambda: "old", tags=["entries"], cache="flaky") == "old"
    server.client().save()  # the snapshot holds both values, the epoch and the generation
    Entry.objects.create(title="a", slug="a")  # invalidates both
    assert cached("entry", lambda: "new", cache="flaky") == "new"
    server.kill()  # crash: what happened after the snapshot is lost
    server.start()  # loads the snapshot: the old values are back in Redis
    assert server.client().dbsize() > 0
    assert cached("entry", lambda: "fresh", cache="flaky") == "fresh"
    assert cached("list", lambda: "fresh", tags=["entries"], cache="flaky") == "fresh"


def test_epoch_a_restarted_empty_server_starts_above_the_old_epoch(flaky):
    server, backend = flaky
    cached("entry", lambda: "old", cache="flaky")
    old = int(server.client().hget(backend.make_key(EPOCH_KEY), "epoch"))
    server.stop()
    server.start()
    cached("entry", lambda: "new", cache="flaky")
    assert int(server.client().hget(backend.make_key(EPOCH_KEY), "epoch")) > old


def test_epoch_command_makes_everything_cached_unreachable(capsys):
    assert cached("entry", lambda: "old") == "old"
    assert cached("entry", lambda: "old", cache="locmem") == "old"
    call_command("signalhooks", "epoch", "--cache", "default", "--cache", "locmem")
    assert "default: new epoch, 0 failed invalidation(s) delivered" in capsys.readouterr().out
    assert cached("entry", lambda: "new") == "new"
    assert cached("entry", lambda: "new", cache="locmem") == "new"


def test_epoch_generic_backends_delete_the_key_under_the_epoch():
    invalidate(Entry, keys=["entry"], cache="builtin")
    assert cached("entry", lambda: "old", cache="builtin") == "old"
    Entry.objects.create(title="a", slug="a")
    assert cached("entry", lambda: "new", cache="builtin") == "new"
    assert caches["builtin"].get(EPOCH_KEY) is not None
