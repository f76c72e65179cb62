from __future__ import annotations

import logging
import threading

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from signalhooks import cache_invalidated, cached, invalidate
from signalhooks.cache import Rule, finish_rules, glob_escape, tag_key
from signalhooks.checks import check_hooks
from signalhooks.invalidation import pending_retries
from signalhooks.registry import registry
from tests.cache_helpers import fill, generation, present, stored_key
from tests.cacheapp.models import Article, Category, Code, Entry, Item, Label, Note, Writer
from tests.db_threads import close_thread_connections
from tests.testapp.models import Critic, Place, Restaurant, Seat

# Real commits: invalidation waits for them.
pytestmark = pytest.mark.django_db(transaction=True)

cache = caches["default"]


def command_calls(name):
    stats = cache.client.get_client().info("commandstats")
    return stats.get(f"cmdstat_{name}", {}).get("calls", 0)


# -- 1. rules on create, update, delete; templates; old and new values ---------------------


def test_invalidate_on_create_update_delete():
    invalidate(Entry, keys=["entry:{pk}", "entry:slug:{slug}", "home"])
    fill("home")
    entry = Entry.objects.create(title="a", slug="a")
    assert present("home") == set()
    fill("home", f"entry:{entry.pk}", "entry:slug:a")
    entry.title = "b"
    entry.save()
    assert present("home", f"entry:{entry.pk}", "entry:slug:a") == set()
    fill("home", f"entry:{entry.pk}", "entry:slug:a")
    pk = entry.pk
    entry.delete()
    assert present("home", f"entry:{pk}", "entry:slug:a") == set()


def test_invalidate_old_and_new_values_when_a_template_field_changes():
    invalidate(
        Entry,
        keys=["entry:slug:{slug}"],
        tags=["author:{author_id}"],
        patterns=["list:{slug}:*"],
    )
    entry = Entry.objects.create(title="a", slug="old", author_id=1)
    fill("entry:slug:old", "entry:slug:new", "entry:slug:other", "list:old:1", "list:new:1")
    for tag in ("author:1", "author:2", "author:3"):
        cached(f"list-{tag}", lambda: "x", tags=[tag])
    before = {t: generation(t) for t in ("author:1", "author:2", "author:3")}
    entry.slug = "new"
    entry.author_id = 2
    entry.save()
    assert present("entry:slug:old", "entry:slug:new", "entry:slug:other") == {"entry:slug:other"}
    assert present("list:old:1", "list:new:1") == set()
    after = {t: generation(t) for t in before}
    assert after == {"author:1": before["author:1"] + 1, "author:2": before["author:2"] + 1,
                     "author:3": before["author:3"]}  # fmt: skip


def test_invalidate_foreign_key_by_name_or_attname():
    invalidate(Article, keys=["writer:{writer}", "writer-id:{writer_id}"])
    alice, bob = Writer.objects.create(name="alice"), Writer.objects.create(name="bob")
    article = Article.objects.create(writer=alice, slug="a")
    keys = [
        f"writer:{alice.pk}",
        f"writer-id:{alice.pk}",
        f"writer:{bob.pk}",
        f"writer-id:{bob.pk}",
    ]
    fill(*keys)
    article.writer = bob  # changes are keyed "writer": the old id goes too
    article.save()
    assert present(*keys) == set()


def test_invalidate_format_spec_and_a_primary_key_that_is_not_id():
    invalidate(Code, keys=["code:{pk}", "code:{code!r}", "label:{label:>5}"])
    fill("code:abc", "code:'abc'", "label:    x")
    Code.objects.create(code="abc", label="x")
    assert present("code:abc", "code:'abc'", "label:    x") == set()


def test_invalidate_literal_braces_are_kept():
    invalidate(Entry, keys=["{{literal}}:{slug}"])
    fill("{literal}:a")
    Entry.objects.create(title="t", slug="a")
    assert present("{literal}:a") == set()


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


def test_invalidate_delete_uses_the_loaded_values():
    invalidate(Entry, keys=["entry:slug:{slug}"])
    Entry.objects.create(title="a", slug="stored")
    entry = Entry.objects.get()
    fill("entry:slug:stored")
    entry.slug = "edited-but-not-saved"
    entry.delete()
    assert present("entry:slug:stored") == set()


def test_invalidate_loads_a_deferred_template_field():
    invalidate(Entry, keys=["entry:slug:{slug}"])
    Entry.objects.create(title="a", slug="s")
    entry = Entry.objects.only("title").get()
    fill("entry:slug:s")
    entry.title = "b"
    with CaptureQueriesContext(connection) as queries:
        entry.save()
    assert present("entry:slug:s") == set()
    assert len(queries) == 2  # the UPDATE, and the slug the key needs
    entry = Entry.objects.only("title").get()
    fill("entry:slug:s")
    entry.delete()  # pre_delete: the row is still there to load the slug from
    assert present("entry:slug:s") == set()


def test_invalidate_unknown_old_value_of_a_deferred_field():
    invalidate(Entry, keys=["entry:slug:{slug}"])
    Entry.objects.create(title="a", slug="old")
    entry = Entry.objects.only("title").get()
    entry.slug = "new"  # the old slug was never loaded: only the new one is known
    fill("entry:slug:new")
    entry.save()
    assert present("entry:slug:new") == set()


# -- 2. after commit only ------------------------------------------------------------------


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


def test_invalidate_savepoint_rollback_keeps_the_outer_invalidations():
    invalidate(Entry, keys=["entry:slug:{slug}"])
    fill("entry:slug:outer", "entry:slug:inner", "entry:slug:after")
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            # The batch (and its flush) starts inside a savepoint that rolls back.
            Entry.objects.create(title="i", slug="inner")
            raise RuntimeError
        Entry.objects.create(title="o", slug="outer")
        with pytest.raises(RuntimeError), transaction.atomic():
            Entry.objects.create(title="i2", slug="rolled-back")
            raise RuntimeError
        Entry.objects.create(title="a", slug="after")
    assert present("entry:slug:outer", "entry:slug:after") == set()
    assert present("entry:slug:inner") == {"entry:slug:inner"}  # only rolled-back work


def test_invalidate_savepoint_rollback_alone_sends_nothing(round_trips):
    invalidate(Entry, keys=["entry:slug:{slug}"])
    fill("entry:slug:inner")
    start = round_trips()
    with transaction.atomic(), pytest.raises(RuntimeError), transaction.atomic():
        Entry.objects.create(title="i", slug="inner")
        raise RuntimeError
    assert round_trips() - start == 0
    assert present("entry:slug:inner") == {"entry:slug:inner"}
    # A batch begun before the savepoint keeps what the savepoint added: a bit more.
    start = round_trips()
    with transaction.atomic():
        Entry.objects.create(title="x", slug="x")
        with pytest.raises(RuntimeError), transaction.atomic():
            Entry.objects.create(title="i", slug="inner")
            raise RuntimeError
    assert round_trips() - start == 1
    assert present("entry:slug:inner") == set()


def test_invalidate_reused_atomic_does_not_flush_a_rolled_back_transaction():
    invalidate(Entry, keys=["entry:slug:{slug}"])

    @transaction.atomic  # the same Atomic object is the outer block of both calls
    def write(slug, fail):
        with transaction.atomic():
            Entry.objects.create(title=slug, slug=slug)
        if fail:
            raise RuntimeError

    fill("entry:slug:failed", "entry:slug:kept")
    with pytest.raises(RuntimeError):
        write("failed", fail=True)
    write("kept", fail=False)
    assert present("entry:slug:failed", "entry:slug:kept") == {"entry:slug:failed"}


def test_invalidate_on_commit_callback_that_writes_in_a_new_transaction():
    invalidate(Entry, keys=["entry:slug:{slug}"])
    fill("entry:slug:first", "entry:slug:second")

    def write_more():
        with transaction.atomic():
            Entry.objects.create(title="2", slug="second")

    with transaction.atomic():
        transaction.on_commit(write_more)  # runs before the flush of this transaction
        Entry.objects.create(title="1", slug="first")
    assert present("entry:slug:first", "entry:slug:second") == set()


def test_invalidate_outside_a_transaction_is_immediate():
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


# -- 3. one round trip per transaction -----------------------------------------------------


def test_invalidate_one_round_trip_per_transaction(round_trips, flushes):
    invalidate(Entry, keys=["entry:{pk}", "home"], tags=["entries", "author:{author_id}"])
    invalidate(Entry, patterns=["list:{author_id}:*"])
    invalidate(Category, keys=["category:{pk}", "home"], tags=["entries"])
    for tag in ("entries", "author:0", "author:1"):
        cached(f"t-{tag}", lambda: 1, tags=[tag])
    fill("list:0:a", "list:1:b", "list:9:c")
    gens = {t: generation(t) for t in ("entries", "author:0", "author:1")}
    scans = command_calls("scan")
    start = round_trips()
    with transaction.atomic():
        entries = [
            Entry.objects.create(title=str(i), slug=str(i), author_id=i % 3) for i in range(20)
        ]
        for entry in entries:
            entry.views += 1
            entry.save()
        Category.objects.create(name="c")
        assert round_trips() - start == 0
    assert round_trips() - start == 1
    [sent] = flushes
    assert sent["cache"] == "default"
    assert "home" in sent["keys"] and len(sent["keys"]) == 22
    assert sent["tags"] == ["author:0", "author:1", "author:2", "entries"]
    assert sent["patterns"] == ["list:0:*", "list:1:*", "list:2:*"]
    assert present("list:0:a", "list:1:b", "list:9:c") == {"list:9:c"}
    assert {t: generation(t) for t in gens} == {t: g + 1 for t, g in gens.items()}
    assert generation("author:2") is None  # nobody reads it: not created
    assert command_calls("scan") == scans + 6  # each pattern, and what cached() keeps under it


def test_invalidate_patterns_page_through_scan_never_keys(round_trips):
    invalidate(Entry, patterns=["page:{slug}:*"])
    cache.set_many({f"page:p:{i}": 1 for i in range(3000)})
    cache.set_many({f"page:q:{i}": 1 for i in range(100)})
    keys_calls, scan_calls = command_calls("keys"), command_calls("scan")
    start = round_trips()
    with override_settings(SIGNALHOOKS={"PATTERN_SCAN_COUNT": 500}):
        Entry.objects.create(title="t", slug="p")
    trips = round_trips() - start
    assert command_calls("keys") == keys_calls
    # One SCAN page per round trip, for the pattern and for what cached() keeps under it.
    assert 3 < trips < command_calls("scan") - scan_calls <= 2 * trips
    assert present(*(f"page:p:{i}" for i in range(3000))) == set()
    assert len(present(*(f"page:q:{i}" for i in range(100)))) == 100


def test_invalidate_two_caches_one_round_trip_each(round_trips, flushes):
    invalidate(Entry, keys=["entry:{slug}"])
    invalidate(Entry, keys=["entry:{slug}"], cache="builtin")
    builtin = caches["builtin"]
    fill("entry:a")
    fill("entry:a", backend=builtin)
    start = round_trips()
    Entry.objects.create(title="a", slug="a")
    assert round_trips() - start == 1  # the default cache (counted); builtin has its own
    assert present("entry:a") == set() and present("entry:a", backend=builtin) == set()
    assert sorted(f["cache"] for f in flushes) == ["builtin", "default"]


# -- 4. tags and cached() ------------------------------------------------------------------


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
    assert cached("plain", lambda: 8) == 7
    assert cached("none", lambda: None) is None
    assert cached("none", lambda: "recomputed") is None  # a cached None is a hit


def test_cached_timeout_and_cache_arguments():
    assert cached("short", lambda: 1, timeout=60, cache="locmem") == 1
    assert cached("short", lambda: 2, timeout=60, cache="locmem") == 1
    assert cached("short", lambda: 3) == 3
    cached("default-timeout", lambda: 1)
    assert 0 < cache.ttl(stored_key("default-timeout")) <= 300  # the cache's TIMEOUT
    with pytest.raises(TypeError, match=r"tags=\['entries'\]"):
        cached("x", lambda: 1, tags="entries")


def test_cached_value_computed_before_a_commit_is_never_served_after_it():
    invalidate(Entry, tags=["entries"])
    Entry.objects.create(title="first", slug="a")
    computing, committed = threading.Event(), threading.Event()

    def slow_render():
        titles = [e.title for e in Entry.objects.order_by("pk")]
        computing.set()
        assert committed.wait(10)  # another request commits a change meanwhile
        return titles

    def writer():
        try:
            assert computing.wait(10)
            Entry.objects.create(title="second", slug="b")
        finally:
            close_thread_connections()
            committed.set()

    thread = threading.Thread(target=writer)
    thread.start()
    stale = cached("home", slow_render, tags=["entries"])
    thread.join()
    assert stale == ["first"]  # computed before the commit, stored under the old generation
    fresh = cached(
        "home", lambda: [e.title for e in Entry.objects.order_by("pk")], tags=["entries"]
    )
    assert fresh == ["first", "second"]


def test_cached_restarts_a_lost_generation_above_the_old_one():
    invalidate(Entry, tags=["entries"])
    cached("home", lambda: "old", tags=["entries"])
    old = generation("entries")
    cache.delete(tag_key("entries"))  # evicted
    Entry.objects.create(title="a", slug="a")  # a bump of a lost tag creates nothing
    assert generation("entries") is None
    assert cached("home", lambda: "new", tags=["entries"]) == "new"
    assert generation("entries") > old


# -- 5. patterns are glob-escaped ----------------------------------------------------------


def test_invalidate_patterns_escape_values():
    invalidate(Entry, patterns=["list:{slug}:*"])
    fill("list:a*:1", "list:a*:2", "list:abc:1", "list:a:1")
    Entry.objects.create(title="t", slug="a*")
    assert present("list:a*:1", "list:a*:2", "list:abc:1", "list:a:1") == {"list:abc:1", "list:a:1"}
    fill("list:[ab]?\\:1", "list:a?\\:1", "list:b\\:1")
    Entry.objects.create(title="t", slug="[ab]?\\")
    assert present("list:[ab]?\\:1", "list:a?\\:1", "list:b\\:1") == {"list:a?\\:1", "list:b\\:1"}
    assert glob_escape("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"


def test_invalidate_pattern_format_spec_and_conversion():
    invalidate(Entry, patterns=["views:{views:03d}:*", "title:{title!r}:*"])
    fill("views:007:x", "title:'a*':x", "title:'ab':x")
    Entry.objects.create(title="a*", slug="s", views=7)
    assert present("views:007:x", "title:'a*':x", "title:'ab':x") == {"title:'ab':x"}


# -- 6. m2m --------------------------------------------------------------------------------


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


def test_invalidate_m2m_with_a_pk_only_rule_reads_no_rows():
    invalidate(Entry, keys=["entry:{pk}"], tags=["entries"])
    entries = [Entry.objects.create(title=str(i), slug=str(i)) for i in range(3)]
    news = Category.objects.create(name="news")
    fill(*(f"entry:{e.pk}" for e in entries))
    with CaptureQueriesContext(connection) as queries:
        news.entries.add(*entries)
    assert not [
        q for q in queries if q["sql"].startswith("SELECT") and 'FROM "cacheapp_entry" ' in q["sql"]
    ]
    assert present(*(f"entry:{e.pk}" for e in entries)) == set()
    invalidate(Category, keys=["constant"])
    fill("constant")
    entries[0].categories.clear()  # the rule has no fields: the constant key goes
    assert present("constant") == set()


# -- 7. bulk rows (HooksQuerySet in test_querysets.py; here: a counter's parent rows) ------


def test_invalidate_rows_from_a_bulk_handler_caller():
    invalidate(Entry, keys=["entry:{slug}"], changed="views")
    entry = Entry.objects.create(title="t", slug="s")
    row = Entry.objects.filter(pk=entry.pk).values(*registry.bulk_fields(Entry), "pk").get()
    fill("entry:s")
    # A counter passes the same row twice after it UPDATEs a parent: changed, old unknown.
    registry.run_bulk(Entry, "default", "update", [(row, row)])
    assert present("entry:s") == set()
    fill("entry:s")
    registry.run_bulk(Entry, "default", "update", [(row, {**row, "title": "x"})])
    assert present("entry:s") == {"entry:s"}  # changed="views": views did not change


# -- 8. backends and checks ----------------------------------------------------------------


@pytest.mark.parametrize("alias", ["locmem", "builtin"])
def test_invalidate_other_backends_get_keys_and_tags(alias, flushes):
    backend = caches[alias]
    invalidate(Entry, keys=["entry:{slug}"], tags=["entries", "unread"], cache=alias)
    assert cached("list", lambda: "v1", tags=["entries"], cache=alias) == "v1"
    fill("entry:a", backend=backend)
    Entry.objects.create(title="a", slug="a")
    assert present("entry:a", backend=backend) == set()
    assert cached("list", lambda: "v2", tags=["entries"], cache=alias) == "v2"
    assert backend.get(tag_key("unread")) is None  # never read: never created
    assert flushes[-1]["cache"] == alias and flushes[-1]["tags"] == ["entries", "unread"]
    Note.objects.create(text="no rule on this cache")


def test_invalidate_tags_only_through_the_cache_api():
    invalidate(Entry, tags=["entries"], cache="locmem")
    cached("list", lambda: 1, tags=["entries"], cache="locmem")
    gen = generation("entries", caches["locmem"])
    Entry.objects.create(title="a", slug="a")
    assert generation("entries", caches["locmem"]) == gen + 1


# django-redis' own ShardClient warns about its own calls.
@pytest.mark.filterwarnings("ignore:.* on sharded client should not specify client")
def test_invalidate_sharded_django_redis_gets_everything():
    sharded = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": [settings.REDIS_URL],
        "KEY_PREFIX": f"{settings.CACHE_PREFIX}-sharded",
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.ShardClient"},
    }
    with override_settings(CACHES={**settings.CACHES, "sharded": sharded}):
        backend = caches["sharded"]
        invalidate(
            Entry, keys=["e:{slug}"], tags=["entries"], patterns=["l:{slug}:*"], cache="sharded"
        )
        cached("list", lambda: 1, tags=["entries"], cache="sharded")
        gen = generation("entries", backend)
        fill("e:a", "l:a:1", "l:b:1", backend=backend)
        try:
            Entry.objects.create(title="a", slug="a")
            assert present("e:a", "l:a:1", "l:b:1", backend=backend) == {"l:b:1"}
            assert generation("entries", backend) == gen + 1
        finally:
            backend.delete_pattern("*")


def test_invalidate_pattern_on_a_cache_without_delete_pattern_is_logged(caplog):
    with override_settings(CACHES={**settings.CACHES, "swap": settings.CACHES["default"]}):
        invalidate(Entry, keys=["entry:{slug}"], patterns=["list:*"], cache="swap")
    # The alias became a LocMemCache after the rule was declared (system check E012).
    with override_settings(CACHES={**settings.CACHES, "swap": settings.CACHES["locmem"]}):
        fill("entry:a", backend=caches["swap"])
        with caplog.at_level(logging.ERROR, logger="signalhooks"):
            Entry.objects.create(title="a", slug="a")
        assert present("entry:a", backend=caches["swap"]) == set()
    [record] = caplog.records
    assert "cannot delete patterns; skipped ['list:*']" in record.getMessage()
    assert pending_retries("swap") == 0  # retrying cannot help


def test_invalidate_refuses_a_rule_that_cannot_work_where_it_is_declared():
    hooks = list(registry.hooks())
    with pytest.raises(
        ImproperlyConfigured, match=r"'nope' is not in settings.CACHES\. Define 'nope' in"
    ):
        invalidate(Entry, keys=["x"], cache="nope")
    with pytest.raises(
        ImproperlyConfigured,
        match=r"^cacheapp.Entry invalidate\(keys=\['entry:\{pk\}:\{slugg\}'\]\) "
        r"\(.*test_cache.py:\d+\): the template field 'slugg' is not a concrete field of "
        r"cacheapp.Entry\. Use one of: pk",
    ):
        invalidate("cacheapp.Entry", keys=["entry:{pk}:{slugg}"])
    with pytest.raises(ImproperlyConfigured, match="patterns need django-redis.*LocMemCache"):
        invalidate(Entry, patterns=["p:*"], cache="locmem")
    assert list(registry.hooks()) == hooks  # nothing half-registered
    invalidate(Entry, keys=["fine:{pk}"], patterns=["fine:*"])
    assert check_hooks() == []


def test_invalidate_rules_that_cannot_work_stop_start_up():
    # ready() refuses every rule that cannot work: those declared while the models
    # loaded were not checked where they were declared.
    finish_rules()
    with override_settings(CACHES={**settings.CACHES, "gone": settings.CACHES["locmem"]}):
        invalidate(Entry, keys=["entry:{slug}"], cache="gone")
    with pytest.raises(
        ImproperlyConfigured,
        match=r"^signalhooks: these invalidate\(\) rules cannot work:\n  cacheapp.Entry "
        r"invalidate\(keys=\['entry:\{slug\}'\]\) \(.*test_cache.py:\d+\): the cache alias "
        r"'gone' is not in settings.CACHES\. Define 'gone' in settings.CACHES, or pass cache=",
    ):
        finish_rules()


def test_invalidate_checks_report_what_rules_declared_early_cannot_do():
    # A rule declared before ready() (or whose cache was removed since) is reported by
    # the system checks, naming the model, the rule, where it was declared and the fix.
    checked = [
        Rule(Entry, ["x"], [], [], "nope", frozenset(), "hooks.py:1").check(Entry),
        Rule(Entry, ["entry:{pk}:{slugg}"], [], [], None, frozenset(), "hooks.py:2").check(Entry),
        Rule(Entry, [], [], ["p:*"], "locmem", frozenset(), "hooks.py:3").check(Entry),
    ]
    [[e010], [e011], [e012]] = checked
    assert e010.id == "signalhooks.E010" and "invalidate(keys=['x']) (hooks.py:1)" in e010.msg
    assert e010.hint == (
        "Define 'nope' in settings.CACHES, or pass cache= one of the configured aliases: "
        "'default', 'locmem', 'builtin'."
    )
    with override_settings(SIGNALHOOKS={"CACHE": "nope"}):
        [e010] = Rule(Entry, ["x"], [], [], None, frozenset(), "hooks.py:1").check(Entry)
    assert e010.hint == (
        "Define 'nope' in settings.CACHES, or set SIGNALHOOKS['CACHE'] to one of the "
        "configured aliases: 'default', 'locmem', 'builtin'."
    )
    assert e011.id == "signalhooks.E011" and "author_id" in e011.hint
    assert "cacheapp.Entry invalidate(keys=['entry:{pk}:{slugg}'])" in e011.msg
    assert e012.id == "signalhooks.E012" and "LocMemCache" in e012.msg


def test_invalidate_cache_removed_after_declaring_never_fails_a_save(caplog):
    with override_settings(CACHES={**settings.CACHES, "gone": settings.CACHES["locmem"]}):
        invalidate(Entry, keys=["entry:{slug}"], cache="gone")
    assert [e.id for e in check_hooks()] == ["signalhooks.E010"]
    with caplog.at_level(logging.ERROR, logger="signalhooks"):
        Entry.objects.create(title="a", slug="a")
    assert "invalidating on cache 'gone' failed (InvalidCacheBackendError" in caplog.text
    assert pending_retries("gone") == 1


def test_invalidate_bad_arguments():
    with pytest.raises(TypeError, match=r"pass a list, e.g. keys=\['home'\]"):
        invalidate(Entry, keys="home")
    with pytest.raises(TypeError, match="needs keys=, tags= or patterns="):
        invalidate(Entry)
    with pytest.raises(ValueError, match="has no field 'nope'"):
        invalidate(Entry, keys=["k"], changed="nope")
    with pytest.raises(ValueError, match=r"invalidate\(cacheapp.Entry\): 'a:\{pk' is not a valid"):
        invalidate(Entry, keys=["a:{pk"])
    with pytest.raises(ValueError, match=r"uses \{author.name\}.*concrete fields by name"):
        invalidate(Entry, tags=["x:{author.name}"])
    with pytest.raises(ValueError, match=r"uses \{\}"):
        invalidate("cacheapp.Entry", keys=["x:{}"])
    with pytest.raises(ValueError, match="nests a field in a format spec"):
        invalidate(Entry, keys=["x:{pk:{width}}"])
    with pytest.raises(ValueError, match=r"uses the conversion !z; use !r, !s or !a"):
        invalidate(Entry, keys=["x:{pk!z}"])


def test_invalidate_unknown_template_field_stays_verbatim():
    # What a rule declared before ready() with a bad field does at run time (E011).
    rule = Rule(Entry, ["entry:{slugg}"], [], ["p:{slugg}:*"], None, frozenset(), "hooks.py:1")
    rule.bind(Entry)
    keys, tags, patterns = [], [], []
    rule.for_instance(Entry(title="a", slug="a"), {}, True, keys, tags, patterns)
    assert keys == ["entry:{slugg}"] and patterns == ["p:{slugg}:*"]


def test_invalidate_templates_format_as_str_format_does():
    # The compiled templates against str.format over the same row, literal text included.
    keys = ["{pk}", "{slug!r}:{{x}}", "'q\"\\{views:03d}", "{title:>6}|{author_id!a}", "const"]
    rule = Rule(Entry, keys, ["{slug}"], ["{title!s}*{views}"], None, frozenset(), "hooks.py:1")
    rule.bind(Entry)
    entry = Entry(id=7, title="t*[1]", slug="é'", views=5, author_id=3)
    values = {"pk": 7, "slug": "é'", "views": 5, "title": "t*[1]", "author_id": 3}
    found = [], [], []
    rule.for_instance(entry, {}, True, *found)
    assert found == (
        [t.format(**values) for t in keys],
        ["é'"],
        [r"t\*\[1\]*5"],  # field values glob-escaped, the template's own glob kept
    )


# -- 10. the signal ------------------------------------------------------------------------


def test_cache_invalidated_receiver_failure_never_fails_a_save(caplog):
    invalidate(Entry, keys=["entry:{slug}"])

    def broken(sender, **kwargs):
        raise RuntimeError("receiver bug")

    cache_invalidated.connect(broken, weak=False, dispatch_uid="test_cache.broken")
    try:
        fill("entry:a")
        with caplog.at_level(logging.ERROR, logger="signalhooks"), transaction.atomic():
            Entry.objects.create(title="a", slug="a")
    finally:
        cache_invalidated.disconnect(dispatch_uid="test_cache.broken")
    assert present("entry:a") == set()
    assert "cache_invalidated receiver" in caplog.text and "receiver bug" in caplog.text


# -- 11. listing ---------------------------------------------------------------------------


def test_invalidate_rules_are_listed(capsys):
    invalidate(Entry, keys=["entry:{pk}"], tags=["entries"], patterns=["list:*"], cache="default")
    invalidate(Entry, keys=["home"])
    call_command("signalhooks")
    out = capsys.readouterr().out
    assert "invalidate(keys=['entry:{pk}'], tags=['entries'], patterns=['list:*'])" in out
    assert "keys=['entry:{pk}'], tags=['entries'], patterns=['list:*'], cache='default'" in out
    assert "cache=\"default (SIGNALHOOKS['CACHE'])\"" in out
    assert "rule" in out and "test_cache.py:" in out
    for event in ("post_save", "pre_delete", "m2m_changed"):
        assert event in out


def test_invalidate_rule_declared_before_ready():
    note = Note.objects.create(text="a")
    fill(f"note:{note.pk}:a")
    Note.objects.filter(pk=note.pk).update(text="b")  # a plain manager: no rules
    assert present(f"note:{note.pk}:a") == {f"note:{note.pk}:a"}
    note.text = "c"
    note.save()
    assert present(f"note:{note.pk}:a") == set()
    assert registry.bulk_fields(Note) == {"id", "text"}


def test_invalidate_rule_on_a_model_that_never_resolves_is_refused_at_once():
    hooks = list(registry.hooks())
    with pytest.raises(
        ImproperlyConfigured,
        match=r"^invalidate\('cacheapp.Gone'\): no installed model is called 'cacheapp.Gone' "
        r"\(did you mean 'cacheapp.Note'\?\)\. Name a model as 'app_label.ModelName'",
    ):
        invalidate("cacheapp.Gone", keys=["gone:{pk}"])
    assert list(registry.hooks()) == hooks


def test_invalidate_m2m_through_a_to_field_foreign_key():
    invalidate(Label, keys=["label:{pk}", "label:{name}"])
    invalidate(Item, keys=["item:{pk}"])
    first, second = Label.objects.create(code="a", name="A"), Label.objects.create(code="b")
    item = Item.objects.create()
    fill(f"label:{first.pk}", "label:A", f"label:{second.pk}", f"item:{item.pk}")
    item.labels.add(first, second)  # pk_set holds "a" and "b"
    assert present(f"label:{first.pk}", "label:A", f"item:{item.pk}") == set()
    fill("label:A")
    item.labels.remove(first)
    assert present("label:A") == set()
    fill("label:A", f"item:{item.pk}")
    first.items.add(item)  # the other direction: pk_set holds item pks
    assert present("label:A", f"item:{item.pk}") == set()


def test_invalidate_m2m_pk_only_rule_through_a_to_field_reads_the_pks():
    invalidate(Label, keys=["label:{pk}"])
    label = Label.objects.create(code="a")
    item = Item.objects.create()
    fill(f"label:{label.pk}")
    with CaptureQueriesContext(connection) as queries:
        item.labels.add(label)
    assert present(f"label:{label.pk}") == set()
    # Codes are not pks: one SELECT of the labels by code (besides Django's own queries).
    assert sum('"code" IN' in q["sql"] for q in queries) == 1


def test_invalidate_loads_several_deferred_template_fields_in_one_query():
    invalidate(Entry, keys=["entry:{slug}:{author_id}"])
    Entry.objects.create(title="a", slug="s", author_id=3)
    entry = Entry.objects.only("title").get()
    fill("entry:s:3")
    entry.title = "b"
    with CaptureQueriesContext(connection) as queries:
        entry.save()
    assert present("entry:s:3") == set()
    assert len(queries) == 2  # the UPDATE, and one SELECT of slug and author_id


def test_invalidate_deferred_fields_of_a_row_that_is_gone():
    invalidate(Entry, keys=["entry:{slug}"])
    Entry.objects.create(title="a", slug="s")
    entry = Entry.objects.only("title").get()
    fill("entry:s")
    Entry.objects.all()._raw_delete("default")  # deleted behind our back
    entry.delete()  # the slug cannot be known any more: nothing to invalidate, no error
    assert present("entry:s") == {"entry:s"}


def test_invalidate_tags_only_rule_queryset_update_issues_no_select():
    invalidate(Entry, tags=["entries"])
    Entry.objects.bulk_create([Entry(title=str(i), slug=str(i)) for i in range(5)])
    cached("home", lambda: "old", tags=["entries"])
    with CaptureQueriesContext(connection) as queries:
        assert Entry.objects.filter(title__in=["1", "2"]).update(views=3) == 2
    assert [q["sql"].split()[0] for q in queries] == ["UPDATE"]
    assert cached("home", lambda: "new", tags=["entries"]) == "new"
    with CaptureQueriesContext(connection) as queries:
        assert Entry.objects.filter(title="none").update(views=3) == 0
    assert len(queries) == 1
    assert cached("home", lambda: "newer", tags=["entries"]) == "new"  # nothing changed


def test_invalidate_after_the_server_forgot_the_scripts():
    invalidate(Entry, keys=["entry:{slug}"], tags=["entries"], patterns=["list:{slug}:*"])
    fill("entry:a", "list:a:1")
    cache.client.get_client(write=True).script_flush()  # as after a restart
    Entry.objects.create(title="a", slug="a")  # by SHA, refused, then with the texts
    assert present("entry:a", "list:a:1") == set()
    fill("entry:b", "list:b:1")
    Entry.objects.create(title="b", slug="b")  # by SHA
    assert present("entry:b", "list:b:1") == set()


# -- m2m to a multi-table child, composite primary keys ------------------------------------


def test_invalidate_parent_rule_on_m2m_changes_of_a_multi_table_child():
    """Critic.reviewed points at Restaurant; the rules are Place's (its concrete parent)."""
    invalidate(Place, keys=["place:{name}"])
    invalidate(Place, keys=["place:{pk}"])  # pk-only: the pk_set holds the pks, no query
    rome = Restaurant.objects.create(name="rome")
    oslo = Restaurant.objects.create(name="oslo")
    critic = Critic.objects.create(name="ada")
    keys = ("place:rome", "place:oslo", f"place:{rome.pk}", f"place:{oslo.pk}")
    for action, gone in (
        (lambda: critic.reviewed.add(rome, oslo), set(keys)),
        (lambda: critic.reviewed.remove(oslo), {"place:oslo", f"place:{oslo.pk}"}),
        (lambda: critic.reviewed.clear(), {"place:rome", f"place:{rome.pk}"}),
        (lambda: oslo.critics.add(critic), {"place:oslo", f"place:{oslo.pk}"}),
        (lambda: oslo.critics.clear(), {"place:oslo", f"place:{oslo.pk}"}),
    ):
        fill(*keys)
        action()
        assert present(*keys) == set(keys) - gone


def test_invalidate_composite_primary_key_save_reads_nothing_back():
    invalidate(Seat, keys=["seat:{pk}", "seat:{row}-{number}:{holder}"])
    Seat.objects.create(row="a", number=1)
    seat = Seat.objects.get()
    fill("seat:('a', 1)", "seat:a-1:", "seat:a-1:ada")
    seat.holder = "ada"
    with CaptureQueriesContext(connection) as queries:
        seat.save()
    assert [q["sql"].split()[0] for q in queries] == ["UPDATE"]
    assert present("seat:('a', 1)", "seat:a-1:", "seat:a-1:ada") == set()
    fill("seat:('a', 1)", "seat:a-1:ada", "seat:a-1:bob")
    Seat.objects.filter(row="a").update(holder="bob")  # HooksQuerySet: rows by their parts
    assert present("seat:('a', 1)", "seat:a-1:ada", "seat:a-1:bob") == set()
