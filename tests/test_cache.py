from __future__ import annotations

import logging
import threading

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from signalhooks import cache_invalidated, cached, invalidate
from signalhooks.batching import pending_retries
from signalhooks.cache import glob_escape, tag_key
from signalhooks.checks import check_hooks
from tests.cacheapp.models import Category, Entry, Note
from tests.redis_server import RedisServer

# Real commits: invalidation waits for them.
pytestmark = pytest.mark.django_db(transaction=True)

cache = caches["default"]


def fill(*keys, backend=cache):
    for key in keys:
        backend.set(key, "cached", timeout=300)


def present(*keys, backend=cache):
    return {key for key in keys if backend.get(key) is not None}


# -- 1. rules on create, update, delete; old and new values ------------------------------


def test_invalidate_on_create_update_delete():
    invalidate(Entry, keys=["entry:{pk}", "entry:slug:{slug}", "home"])
    fill("home")
    entry = Entry.objects.create(title="a", slug="a")
    assert present("home") == set()
    fill("home", f"entry:{entry.pk}", "entry:slug:a")
    entry.title = "b"
    entry.save()
    assert present("home", f"entry:{entry.pk}", "entry:slug:a") == set()
    fill("home", f"entry:{entry.pk}")
    pk = entry.pk
    entry.delete()
    assert present("home", f"entry:{pk}") == set()


def test_invalidate_old_and_new_value_when_template_field_changes():
    invalidate(Entry, keys=["entry:slug:{slug}"], tags=["author:{author_id}"])
    entry = Entry.objects.create(title="a", slug="old", author_id=1)
    fill("entry:slug:old", "entry:slug:new", "entry:slug:other")
    for tag in ("author:1", "author:2"):
        cached(f"list-{tag}", lambda: "x", tags=[tag])
    before = {t: cache.get(tag_key(t)) for t in ("author:1", "author:2")}
    entry.slug = "new"
    entry.author_id = 2
    entry.save()
    assert present("entry:slug:old", "entry:slug:new", "entry:slug:other") == {"entry:slug:other"}
    assert all(cache.get(tag_key(t)) == before[t] + 1 for t in before)


def test_invalidate_changed_and_when_conditions():
    invalidate(Entry, keys=["by-title"], changed="title")
    invalidate(Entry, keys=["popular"], when=lambda e: e.views > 100)
    entry = Entry.objects.create(title="a", slug="a")
    fill("by-title", "popular")
    entry.views = 5
    entry.save()
    assert present("by-title", "popular") == {"by-title", "popular"}
    entry.views = 500
    entry.title = "b"
    entry.save()
    assert present("by-title", "popular") == set()


def test_invalidate_delete_uses_loaded_values_too():
    invalidate(Entry, keys=["entry:slug:{slug}"])
    entry = Entry.objects.create(title="a", slug="stored")
    entry = Entry.objects.get()
    fill("entry:slug:stored")
    entry.slug = "edited-but-not-saved"
    entry.delete()
    assert present("entry:slug:stored") == set()


# -- 2. after commit only -------------------------------------------------------------


def test_invalidate_after_commit_only():
    invalidate(Entry, keys=["home"])
    fill("home")
    with transaction.atomic():
        Entry.objects.create(title="a", slug="a")
        assert present("home") == {"home"}
    assert present("home") == set()


def test_invalidate_nothing_after_rollback():
    invalidate(Entry, keys=["entry:slug:{slug}"])
    fill("entry:slug:a", "entry:slug:b")
    with pytest.raises(RuntimeError), transaction.atomic():
        Entry.objects.create(title="a", slug="a")
        raise RuntimeError
    # A later transaction does not flush what the rolled-back one collected.
    with transaction.atomic():
        Entry.objects.create(title="b", slug="b")
    assert present("entry:slug:a", "entry:slug:b") == {"entry:slug:a"}


def test_invalidate_savepoint_rollback_keeps_outer_invalidations():
    invalidate(Entry, keys=["entry:slug:{slug}"])
    fill("entry:slug:outer", "entry:slug:inner", "entry:slug:after")
    with transaction.atomic():
        try:
            with transaction.atomic():
                # The batch (and its on_commit flush) starts inside the savepoint.
                Entry.objects.create(title="i", slug="inner")
                raise RuntimeError
        except RuntimeError:
            pass
        Entry.objects.create(title="o", slug="outer")
        try:
            with transaction.atomic():
                Entry.objects.create(title="i2", slug="inner")
                raise RuntimeError
        except RuntimeError:
            pass
        Entry.objects.create(title="a", slug="after")
    assert present("entry:slug:outer", "entry:slug:after") == set()


def test_invalidate_outside_transaction_is_immediate():
    invalidate(Entry, keys=["home"], tags=["entries"])
    fill("home")
    Entry.objects.create(title="a", slug="a")
    assert present("home") == set()


def test_invalidate_autocommit_save_is_one_round_trip(round_trips):
    invalidate(Entry, keys=["home", "entry:{pk}"], tags=["entries"])
    entry = Entry.objects.create(title="a", slug="a")
    start = round_trips()
    entry.title = "b"
    entry.save()
    assert round_trips() - start == 1


# -- 3. one round trip per transaction --------------------------------------------------


def test_invalidate_one_round_trip_per_transaction(round_trips):
    invalidate(Entry, keys=["entry:{pk}", "home"], tags=["entries", "author:{author_id}"])
    invalidate(Category, keys=["category:{pk}", "home"], tags=["entries"])
    received = []
    cache_invalidated.connect(lambda **kw: received.append(kw), weak=False, dispatch_uid="t")
    try:
        with transaction.atomic():
            entries = [
                Entry.objects.create(title=str(i), slug=str(i), author_id=i % 3) for i in range(20)
            ]
            for entry in entries:
                entry.views += 1
                entry.save()
            Category.objects.create(name="c")
            assert round_trips() == 0
        assert round_trips() == 1
    finally:
        cache_invalidated.disconnect(dispatch_uid="t")
    [sent] = received
    assert sent["sender"] == "default"
    assert "home" in sent["keys"] and len(sent["keys"]) == 22
    assert sent["tags"] == ["author:0", "author:1", "author:2", "entries"]
    assert sent["patterns"] == []


# -- 4. tags and cached() -----------------------------------------------------------------


def test_cached_reads_and_stores_under_tag_generations():
    calls = []

    def compute():
        calls.append(1)
        return {"n": len(calls)}

    assert cached("home", compute, tags=["entries"]) == {"n": 1}
    assert cached("home", compute, tags=["entries"]) == {"n": 1}
    invalidate(Entry, tags=["entries"])
    Entry.objects.create(title="a", slug="a")
    assert cached("home", compute, tags=["entries"]) == {"n": 2}
    assert cached("plain", lambda: 7) == 7
    assert cache.get("plain") == 7


def test_cached_value_computed_before_a_commit_is_never_served_after_it():
    invalidate(Entry, tags=["entries"])
    Entry.objects.create(title="first", slug="a")
    computing, committed = threading.Event(), threading.Event()

    def slow_render():
        titles = [e.title for e in Entry.objects.order_by("pk")]
        computing.set()
        committed.wait(5)  # another request commits a change meanwhile
        return titles

    def writer():
        computing.wait(5)
        Entry.objects.create(title="second", slug="b")
        from django.db import connection

        connection.close()
        committed.set()

    thread = threading.Thread(target=writer)
    thread.start()
    stale = cached("home", slow_render, tags=["entries"])
    thread.join()
    assert stale == ["first"]
    assert cached("home", lambda: ["fresh"], tags=["entries"]) == ["fresh"]


def test_cached_restarts_a_lost_generation_high():
    cached("home", lambda: "old", tags=["entries"])
    cache.delete(tag_key("entries"))  # evicted
    assert cached("home", lambda: "new", tags=["entries"]) == "new"


# -- 5. patterns -----------------------------------------------------------------------


def test_invalidate_patterns_escape_values():
    invalidate(Entry, patterns=["list:{slug}:*"])
    fill("list:a*:1", "list:a*:2", "list:abc:1", "list:a:1")
    Entry.objects.create(title="t", slug="a*")
    assert present("list:a*:1", "list:a*:2", "list:abc:1", "list:a:1") == {"list:abc:1", "list:a:1"}
    assert glob_escape("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"


# -- 6. m2m ------------------------------------------------------------------------------


def test_invalidate_on_m2m_changes_both_directions():
    invalidate(Entry, keys=["entry:{slug}"])
    invalidate(Category, keys=["category:{name}"])
    entry = Entry.objects.create(title="e", slug="e")
    other = Entry.objects.create(title="o", slug="o")
    news = Category.objects.create(name="news")
    for action, gone in (
        (lambda: entry.categories.add(news), {"entry:e", "category:news"}),
        (lambda: entry.categories.remove(news), {"entry:e", "category:news"}),
        (lambda: news.entries.add(entry, other), {"entry:e", "entry:o", "category:news"}),
        (lambda: news.entries.remove(other), {"entry:o", "category:news"}),
        (lambda: entry.categories.set([]), {"entry:e", "category:news"}),
        (lambda: news.entries.set([entry]), {"entry:e", "category:news"}),
        (lambda: news.entries.clear(), {"entry:e", "category:news"}),
        (lambda: entry.categories.clear(), {"entry:e"}),
    ):
        keys = ("entry:e", "entry:o", "category:news")
        fill(*keys)
        action()
        assert present(*keys) == set(keys) - gone
    entry.categories.add(news)
    fill("entry:o")
    news.entries.clear()
    assert present("entry:o") == {"entry:o"}  # not related any more: untouched


# -- 8. backends and checks ---------------------------------------------------------------


@pytest.mark.parametrize("alias", ["locmem", "builtin"])
def test_invalidate_other_backends_get_keys_and_tags(alias):
    backend = caches[alias]
    invalidate(Entry, keys=["entry:{slug}"], tags=["entries"], cache=alias)
    assert cached("list", lambda: "v1", tags=["entries"], cache=alias) == "v1"
    fill("entry:a", backend=backend)
    Entry.objects.create(title="a", slug="a")
    assert present("entry:a", backend=backend) == set()
    assert cached("list", lambda: "v2", tags=["entries"], cache=alias) == "v2"
    Note.objects.create(text="no rule")


def test_invalidate_checks():
    invalidate(Entry, patterns=["p:*"], cache="locmem")
    invalidate(Entry, keys=["x"], cache="nope")
    invalidate("cacheapp.Entry", keys=["entry:{pk}:{slugg}"])
    errors = {e.id: e for e in check_hooks()}
    assert set(errors) == {"signalhooks.E010", "signalhooks.E011", "signalhooks.E012"}
    assert "'nope' is not in settings.CACHES" in errors["signalhooks.E010"].msg
    assert "'slugg' is not a concrete field of cacheapp.Entry" in errors["signalhooks.E011"].msg
    assert "patterns need django-redis" in errors["signalhooks.E012"].msg
    assert "cacheapp.Entry invalidate(patterns=['p:*'])" in errors["signalhooks.E012"].msg


def test_invalidate_bad_arguments():
    with pytest.raises(TypeError, match=r"pass a list, e.g. keys=\['home'\]"):
        invalidate(Entry, keys="home")
    with pytest.raises(TypeError, match="needs keys=, tags= or patterns="):
        invalidate(Entry)
    with pytest.raises(ValueError, match="has no field 'nope'"):
        invalidate(Entry, keys=["k"], changed="nope")


def test_invalidate_unknown_template_field_never_fails_a_save():
    invalidate(Entry, keys=["entry:{slugg}"])
    fill("entry:{slugg}")
    Entry.objects.create(title="a", slug="a")
    assert present("entry:{slugg}") == set()


# -- 9. Redis down -------------------------------------------------------------------------


def test_invalidate_survives_redis_down_and_retries(caplog):
    server = RedisServer().start()
    location = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": server.url,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
    try:
        with override_settings(CACHES={**caches.settings, "flaky": location}):
            flaky = caches["flaky"]
            invalidate(Entry, keys=["entry:{slug}"], tags=["entries"], cache="flaky")
            fill("entry:a", backend=flaky)
            server.stop()
            with caplog.at_level(logging.ERROR, logger="signalhooks"), transaction.atomic():
                Entry.objects.create(title="a", slug="a")
            assert Entry.objects.filter(slug="a").exists()
            [record] = [r for r in caplog.records if r.name == "signalhooks"]
            assert "entry:a" in record.getMessage() and "'flaky'" in record.getMessage()
            assert pending_retries("flaky") == 2
            server.start()  # same port, empty: put the stale key back
            fill("entry:a", "entry:b", backend=flaky)
            Entry.objects.create(title="b", slug="b")
            assert present("entry:a", "entry:b", backend=flaky) == set()
            assert pending_retries("flaky") == 0
    finally:
        server.stop()


def test_invalidate_retry_queue_is_bounded(caplog):
    server = RedisServer().start()
    location = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": server.url,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
    server.stop()
    with (
        override_settings(
            CACHES={**caches.settings, "flaky": location}, SIGNALHOOKS={"RETRY_LIMIT": 3}
        ),
        caplog.at_level(logging.ERROR, logger="signalhooks"),
    ):
        invalidate(Entry, keys=["a:{slug}", "b:{slug}"], cache="flaky")
        Entry.objects.create(title="x", slug="1")
        Entry.objects.create(title="y", slug="2")
        assert pending_retries("flaky") == 3
        assert any("dropping key" in r.getMessage() for r in caplog.records)
    from signalhooks import batching

    batching._retry.clear()


# -- 11. listing ---------------------------------------------------------------------------


def test_invalidate_rules_are_listed(capsys):
    invalidate(Entry, keys=["entry:{pk}"], tags=["entries"], patterns=["list:*"])
    call_command("signalhooks")
    out = capsys.readouterr().out
    assert "rule" in out and "invalidate(keys=['entry:{pk}'], tags=['entries']" in out
    assert "test_cache.py:" in out


def test_invalidate_rule_declared_before_ready():
    note = Note.objects.create(text="a")
    fill(f"note:{note.pk}:a")
    Note.objects.filter(pk=note.pk).update(text="b")  # plain manager: no rules
    assert present(f"note:{note.pk}:a") == {f"note:{note.pk}:a"}
    note.text = "c"
    note.save()
    assert present(f"note:{note.pk}:a") == set()
    from signalhooks.registry import registry

    assert registry.bulk_fields(Note) == {"id", "text"}


def test_invalidate_tags_only_on_a_cache_without_pipelines():
    invalidate(Entry, tags=["fresh-tag"], cache="locmem")
    Entry.objects.create(title="a", slug="a")  # the tag was never read: nothing to bump
    assert caches["locmem"].get(tag_key("fresh-tag")) is None


def test_invalidate_rule_on_a_model_that_never_resolves():
    from signalhooks.cache import finish_rules

    rule = invalidate("cacheapp.Gone", keys=["gone:{pk}"])
    finish_rules()
    assert rule.model is None
    assert [e.id for e in check_hooks()] == ["signalhooks.E001"] * 3
