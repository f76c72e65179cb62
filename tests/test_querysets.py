from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.db import connection, connections, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.test.utils import CaptureQueriesContext

from signalhooks import invalidate
from signalhooks.hooktypes import Event, Hook
from signalhooks.registry import registry
from tests.cacheapp.models import Article, Entry, Writer

pytestmark = pytest.mark.django_db(transaction=True)

cache = caches["default"]


def fill(*keys):
    for key in keys:
        cache.set(key, "cached")


def present(*keys):
    return {key for key in keys if cache.get(key) is not None}


def selects(queries):
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]


@pytest.fixture
def seen():
    """A bulk handler of another feature (say, a counter): what run_bulk hands it."""
    changes = []
    registry.add(
        Hook(
            func=lambda **kw: None,
            event=Event.POST_SAVE,
            sender=Entry,
            kind="test",
            bulk=changes.append,
            bulk_fields=frozenset({"views"}),
        )
    )
    return changes


@pytest.fixture
def entries():
    invalidate(Entry, keys=["entry:{slug}", "author:{author_id}"])
    return Entry.objects.bulk_create(
        [Entry(title=str(i), slug=f"s{i}", author_id=i % 2) for i in range(5)]
    )


# -- update() ---------------------------------------------------------------------------


def test_update_invalidates_old_and_new_values_with_one_select(entries, round_trips):
    fill("entry:s0", "entry:s1", "author:0", "author:1", "author:7")
    start = round_trips()
    with CaptureQueriesContext(connection) as queries:
        assert Entry.objects.filter(author_id=0).update(author_id=7) == 3
    assert len(selects(queries)) == 1
    assert round_trips() - start == 1
    assert present("entry:s0", "entry:s1", "author:0", "author:1", "author:7") == {
        "author:1",
        "entry:s1",
    }


def test_update_locks_the_rows_it_reads(entries):
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.filter(author_id=0).update(title="x")
    [select] = selects(queries)
    # Rows only: a subquery keeps joins of the filter out of the lock.
    assert "IN (SELECT" in select
    if settings.IS_POSTGRES:
        assert select.endswith("FOR NO KEY UPDATE")
    else:
        assert "FOR" not in select  # SQLite has no row locks


def test_update_inside_a_transaction_waits_for_the_commit(entries):
    fill("entry:s0")
    with transaction.atomic():
        Entry.objects.filter(slug="s0").update(title="x")
        assert present("entry:s0") == {"entry:s0"}
    assert present("entry:s0") == set()


def test_update_with_an_expression_reads_the_new_values(entries):
    invalidate(Entry, keys=["views:{views}", "title:{title}"])
    fill("views:0", "views:10", "title:0", "title:0!")
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.filter(slug="s0").update(
            views=F("views") + 10, title=Concat(F("title"), Value("!"))
        )
    assert len(selects(queries)) == 2  # before, and after: only the database knows
    assert present("views:0", "views:10", "title:0", "title:0!") == set()


def test_update_expression_on_a_column_no_rule_reads_needs_no_second_select(entries):
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.filter(slug="s0").update(views=F("views") + 1)
    assert len(selects(queries)) == 1


def test_update_foreign_key_by_object_or_id():
    invalidate(Article, keys=["writer:{writer_id}"])
    alice, bob = Writer.objects.create(name="a"), Writer.objects.create(name="b")
    Article.objects.create(writer=alice, slug="x")
    fill(f"writer:{alice.pk}", f"writer:{bob.pk}")
    Article.objects.update(writer=bob)
    assert present(f"writer:{alice.pk}", f"writer:{bob.pk}") == set()
    fill(f"writer:{alice.pk}", f"writer:{bob.pk}")
    Article.objects.update(writer_id=alice.pk)
    assert present(f"writer:{alice.pk}", f"writer:{bob.pk}") == set()


def test_update_respects_changed(seen):
    invalidate(Entry, keys=["by-title"], changed="title")
    entry = Entry.objects.create(title="a", slug="a")
    fill("by-title")
    Entry.objects.update(views=3)
    assert present("by-title") == {"by-title"}  # title untouched
    Entry.objects.update(title="b")
    assert present("by-title") == set()
    [first, second] = seen  # the other handler saw both updates, with the old values
    [(before, after)] = first.rows
    assert (before["views"], after["views"], after["pk"]) == (0, 3, entry.pk)
    assert first.action == "update" and first.using == "default" and first.model is Entry


def test_update_of_a_sliced_queryset_is_refused(entries):
    with pytest.raises(TypeError, match="slice has been taken"):
        Entry.objects.all()[:2].update(title="x")


def test_update_async(entries):
    fill("entry:s0")

    async def update():
        await Entry.objects.filter(slug="s0").aupdate(title="x")
        await sync_to_async(connections.close_all)()  # the worker thread's connection

    asyncio.run(update())
    assert present("entry:s0") == set()


# -- bulk_update() ------------------------------------------------------------------------


def test_bulk_update_invalidates_old_and_new(entries, round_trips):
    for entry in entries:
        entry.slug = entry.slug.upper()
    fill("entry:s0", "entry:S0", "entry:s4", "entry:S4")
    start = round_trips()
    with CaptureQueriesContext(connection) as queries:
        assert Entry.objects.bulk_update(entries, ["slug"]) == 5
    assert len(selects(queries)) == 1
    assert round_trips() - start == 1
    assert present("entry:s0", "entry:S0", "entry:s4", "entry:S4") == set()


def test_bulk_update_skips_rows_that_are_gone(entries, seen):
    assert Entry.objects.bulk_update([], ["slug"]) == 0
    Entry.objects.filter(pk=entries[0].pk).delete()
    entries[1].views = 9
    assert Entry.objects.bulk_update(entries[:2], ["views"]) == 1
    [change] = seen
    [(before, after)] = change.rows
    assert (before["pk"], before["views"], after["views"]) == (entries[1].pk, 0, 9)


def test_bulk_update_with_expressions_reads_what_was_written(entries, seen):
    for entry in entries:
        entry.views = F("views") + 5
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.bulk_update(entries, ["views"])
    assert len(selects(queries)) == 2
    [change] = seen
    assert sorted(after["views"] for _, after in change.rows) == [5] * 5


def test_bulk_update_many_rows_in_parameter_sized_batches(seen):
    invalidate(Entry, keys=["entry:{slug}"])
    rows = Entry.objects.bulk_create([Entry(title="t", slug=f"m{i}") for i in range(1200)])
    for row in rows:
        row.slug = row.slug.upper()
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.bulk_update(rows, ["slug"])
    limit = connection.features.max_query_params
    assert len(selects(queries)) == (-(-1200 // limit) if limit else 1)
    [change] = seen[1:]  # seen[0]: the bulk_create
    assert len(change.rows) == 1200
    assert {after["slug"] for _, after in change.rows} == {f"M{i}" for i in range(1200)}


# -- bulk_create() ------------------------------------------------------------------------


def test_bulk_create_invalidates_new_rows_without_a_select(round_trips):
    invalidate(Entry, keys=["entry:{slug}", "home"])
    fill("entry:new", "home")
    start = round_trips()
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.bulk_create([Entry(title="n", slug="new"), Entry(title="m", slug="m")])
    assert selects(queries) == []
    assert round_trips() - start == 1
    assert present("entry:new", "home") == set()


def test_bulk_create_update_conflicts_sees_old_and_new_values():
    invalidate(Article, keys=["article:{slug}:{title}"])
    Article.objects.create(slug="a", title="old")
    fill("article:a:old", "article:a:new", "article:b:new")
    created = Article.objects.bulk_create(
        [Article(slug="a", title="new"), Article(slug="b", title="new")],
        update_conflicts=True,
        unique_fields=["slug"],
        update_fields=["title"],
    )
    assert len(created) == 2
    assert present("article:a:old", "article:a:new", "article:b:new") == set()
    assert dict(Article.objects.values_list("slug", "title")) == {"a": "new", "b": "new"}


def test_bulk_create_update_conflicts_reports_creates_and_updates():
    changes = []
    registry.add(
        Hook(
            func=lambda **kw: None,
            event=Event.POST_SAVE,
            sender=Article,
            bulk=changes.append,
            bulk_fields=frozenset({"title"}),
        )
    )
    Article.objects.create(slug="a", title="old")
    Article.objects.bulk_create(
        [Article(slug="a", title="new"), Article(slug="b", title="b")],
        update_conflicts=True,
        unique_fields=["slug"],
        update_fields=["title"],
    )
    by_action = {c.action: c.rows for c in changes}
    [(before, after)] = by_action["update"]
    assert (before["title"], after["title"]) == ("old", "new")
    [(none, new)] = by_action["create"]
    assert none is None and new["title"] == "b" and new["pk"] is not None


def test_bulk_create_update_conflicts_on_the_primary_key():
    invalidate(Article, keys=["article:{slug}:{title}"])
    article = Article.objects.create(slug="a", title="old")
    fill("article:a:old", "article:a:new")
    Article.objects.bulk_create(
        [Article(pk=article.pk, slug="a", title="new")],
        update_conflicts=True,
        unique_fields=["pk"],
        update_fields=["title"],
    )
    assert present("article:a:old", "article:a:new") == set()


def test_bulk_create_ignore_conflicts_reports_every_object():
    invalidate(Article, keys=["article:{slug}"])
    Article.objects.create(slug="a", title="kept")
    fill("article:a", "article:c")
    Article.objects.bulk_create([Article(slug="a"), Article(slug="c")], ignore_conflicts=True)
    # The database does not say which it skipped: both count (a was only invalidated).
    assert present("article:a", "article:c") == set()
    assert Article.objects.get(slug="a").title == "kept"


# -- delete() ----------------------------------------------------------------------------------


def test_delete_runs_the_rules_of_each_row_with_one_select(entries, round_trips, seen):
    fill("entry:s0", "entry:s2", "entry:s1")
    start = round_trips()
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.filter(author_id=0).delete()
    assert len(selects(queries)) == 1  # Django loads the rows once and signals each
    assert round_trips() - start == 1
    assert present("entry:s0", "entry:s2", "entry:s1") == {"entry:s1"}
    assert seen == []  # deletes reach hooks through pre/post_delete, never twice


def test_delete_cascade_runs_the_childrens_rules():
    invalidate(Article, keys=["article:{slug}"])
    writer = Writer.objects.create(name="w")
    Article.objects.create(writer=writer, slug="a")
    fill("article:a")
    writer.delete()
    assert present("article:a") == set()


# -- models without bulk handlers ------------------------------------------------------------


def test_querysets_without_bulk_handlers_are_plain():
    Entry.objects.create(title="a", slug="a")
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.update(views=1)
        Entry.objects.bulk_create([Entry(title="b", slug="b")])
        Entry.objects.bulk_update(list(Entry.objects.all()), ["views"])
    assert len(selects(queries)) == 1  # the list(...) above, nothing of ours
