from __future__ import annotations

import pytest
from django.core.cache import caches
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from signalhooks import invalidate
from signalhooks.registry import Event, Hook, registry
from tests.cacheapp.models import Entry

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
def entries():
    invalidate(Entry, keys=["entry:{slug}", "author:{author_id}"])
    return Entry.objects.bulk_create(
        [Entry(title=str(i), slug=f"s{i}", author_id=i % 2) for i in range(5)]
    )


def test_update_invalidates_old_and_new_values_with_one_select(entries):
    fill("entry:s0", "entry:s1", "author:0", "author:1", "author:7")
    with CaptureQueriesContext(connection) as queries:
        assert Entry.objects.filter(author_id=0).update(author_id=7) == 3
    assert len(selects(queries)) == 1
    assert present("entry:s0", "entry:s1", "author:0", "author:1", "author:7") == {
        "author:1",
        "entry:s1",
    }


def test_update_with_expression_reads_new_values(entries):
    invalidate(Entry, keys=["views:{views}"])
    fill("views:0", "views:10")
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.filter(slug="s0").update(views=F("views") + 10)
    assert len(selects(queries)) == 2
    assert present("views:0", "views:10") == set()


def test_bulk_update_invalidates_old_and_new(entries):
    for entry in entries:
        entry.slug = entry.slug.upper()
    fill("entry:s0", "entry:S0", "entry:s4", "entry:S4")
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.bulk_update(entries, ["slug"])
    assert len(selects(queries)) == 1
    assert present("entry:s0", "entry:S0", "entry:s4", "entry:S4") == set()
    assert Entry.objects.bulk_update([], ["slug"]) == 0
    Entry.objects.filter(pk=entries[0].pk).delete()
    assert Entry.objects.bulk_update(entries[:2], ["slug"]) == 1


def test_bulk_create_invalidates_new_rows():
    invalidate(Entry, keys=["entry:{slug}", "home"])
    fill("entry:new", "home")
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.bulk_create([Entry(title="n", slug="new")])
    assert selects(queries) == []
    assert present("entry:new", "home") == set()


def test_delete_runs_rules_per_row_with_one_select(entries):
    fill("entry:s0", "entry:s2", "entry:s1")
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.filter(author_id=0).delete()
    assert len(selects(queries)) == 1  # Django fetches the rows once
    assert present("entry:s0", "entry:s2", "entry:s1") == {"entry:s1"}


def test_querysets_without_bulk_hooks_are_plain():
    Entry.objects.create(title="a", slug="a")
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.update(views=1)
        Entry.objects.bulk_create([Entry(title="b", slug="b")])
    assert selects(queries) == []


def test_querysets_other_bulk_handlers_see_rows(entries):
    seen = []
    registry.add(
        Hook(
            func=lambda **kw: None,
            event=Event.POST_SAVE,
            sender=Entry,
            bulk=seen.append,
            bulk_fields=frozenset({"views"}),
        )
    )
    Entry.objects.filter(slug="s1").update(views=3, title="x")
    [change] = seen
    assert change.action == "update" and change.using == "default"
    [(before, after)] = change.rows
    assert (before["views"], after["views"], after["pk"]) == (0, 3, entries[1].pk)
