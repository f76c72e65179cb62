"""``invalidate(..., changed=..., was=/is_now=/was_not=/is_not=/changes_to=)``."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from signalhooks import counter, invalidate
from signalhooks.registry import Registry
from tests.cache_helpers import fill, present
from tests.cacheapp.models import Article, Entry, Writer
from tests.relatedapp.models import Post, Reply

# Real commits: invalidation waits for them.
pytestmark = pytest.mark.django_db(transaction=True)


def test_rule_transition_on_saves():
    invalidate(Entry, keys=["went-live"], changed="title", was="draft", is_now="live")
    invalidate(Entry, keys=["archived"], changed="title", changes_to="archived")
    invalidate(Entry, tags=["left-draft"], changed="title", was_not="live", is_not="draft")
    entry = Entry.objects.create(title="draft", slug="a")  # created: old None
    went = []
    for title in ("live", "archived", "archived", "draft", "live", "other"):
        fill("went-live", "archived")
        entry.title = title
        entry.views += 1  # saved every time, also when the title stays
        entry.save()
        went.append(sorted({"went-live", "archived"} - present("went-live", "archived")))
    assert went == [["went-live"], ["archived"], [], [], ["went-live"], []]


def test_rule_transition_on_create():
    invalidate(Entry, keys=["new-live"], changed="title", is_now="live")
    invalidate(Entry, keys=["was-draft"], changed="title", was="draft")
    fill("new-live", "was-draft")
    Entry.objects.create(title="draft", slug="a")
    assert present("new-live", "was-draft") == {"new-live", "was-draft"}
    Entry.objects.create(title="live", slug="b")
    assert present("new-live", "was-draft") == {"was-draft"}  # a new row was nothing


def test_rule_transition_deletes_always_invalidate():
    invalidate(Entry, keys=["entry:{slug}"], changed="title", changes_to="live")
    entry = Entry.objects.create(title="draft", slug="a")
    fill("entry:a")
    entry.delete()
    assert present("entry:a") == set()


def test_rule_transition_with_a_foreign_key_by_attname():
    alice, bob = Writer.objects.create(name="a"), Writer.objects.create(name="b")
    invalidate(Article, keys=["to-bob:{slug}"], changed="writer_id", is_now=bob.pk)
    article = Article.objects.create(writer=alice, slug="x")
    fill("to-bob:x")
    article.title = "t"
    article.save()
    assert present("to-bob:x") == {"to-bob:x"}
    article.writer = bob
    article.save()
    assert present("to-bob:x") == set()


# -- HooksQuerySet ------------------------------------------------------------------------


def test_rule_transition_on_update():
    invalidate(Entry, keys=["entry:{slug}"], changed="title", was="draft", is_now="live")
    Entry.objects.bulk_create([Entry(title="draft", slug="d"), Entry(title="other", slug="o")])
    fill("entry:d", "entry:o")
    Entry.objects.update(views=1)  # title untouched
    assert present("entry:d", "entry:o") == {"entry:d", "entry:o"}
    Entry.objects.update(title="live")  # d: draft -> live; o: other -> live
    assert present("entry:d", "entry:o") == {"entry:o"}
    fill("entry:d")
    Entry.objects.filter(slug="d").update(title="live")  # live -> live: no change
    assert present("entry:d") == {"entry:d"}


def test_rule_transition_on_bulk_update_and_bulk_create():
    invalidate(Entry, tags=["live"], keys=["entry:{slug}"], changed="title", changes_to="live")
    entries = Entry.objects.bulk_create(
        [Entry(title="draft", slug="a"), Entry(title="live", slug="b")]
    )
    assert present("entry:a", "entry:b") == set()
    fill("entry:a", "entry:b", "entry:c", "entry:d")
    Entry.objects.bulk_create([Entry(title="draft", slug="c"), Entry(title="live", slug="d")])
    assert present("entry:c", "entry:d") == {"entry:c"}  # created live: old None
    for entry in entries:
        entry.title = "live"
    Entry.objects.bulk_update(entries, ["title"])
    assert present("entry:a", "entry:b") == {"entry:b"}  # b was live already


def test_rule_transition_on_an_upsert():
    invalidate(Article, keys=["article:{slug}"], changed="title", was="draft")
    Article.objects.create(slug="x", title="draft")
    fill("article:x", "article:y")
    Article.objects.bulk_create(
        [Article(slug="x", title="final"), Article(slug="y", title="draft")],
        update_conflicts=True,
        update_fields=["title"],
        unique_fields=["slug"],
    )
    # x went draft -> final; y is new (was None, not "draft").
    assert present("article:x", "article:y") == {"article:y"}


def test_rule_transition_rows_with_unknown_old_values_invalidate():
    # A counter moving a parent's column hands the parent's rows to its rules as
    # (row, row): the old values are unknown, so the rule invalidates rather than miss.
    counter(Reply, "post", "comment_count")
    invalidate(Post, keys=["post:{pk}"], changed="comment_count", changes_to=5)
    post = Post.objects.create()
    fill(f"post:{post.pk}")
    Reply.objects.create(post=post)  # 0 -> 1, not 5, but unknown to the rule
    assert Post.objects.get(pk=post.pk).comment_count == 1
    assert present(f"post:{post.pk}") == set()


def test_rule_transition_rows_deleted_in_bulk_invalidate():
    # What a bulk handler gets for deleted rows: (row, None). A delete is no transition.
    from signalhooks.registry import registry

    invalidate(Entry, keys=["entry:{slug}"], changed="title", changes_to="live")
    fill("entry:gone")
    row = {"pk": 1, "slug": "gone", "title": "draft"}
    registry.run_bulk(Entry, "default", "delete", [(row, None)])
    assert present("entry:gone") == set()


# -- the same checks as the decorators ---------------------------------------------------


def test_rule_transition_bad_input_is_refused():
    with pytest.raises(TypeError, match=r"changed= takes field names, not a dict"):
        invalidate(Entry, keys=["k"], changed={"title": "live"})
    with pytest.raises(TypeError, match=r"a transition is the change of one field"):
        invalidate(Entry, keys=["k"], is_now="live")
    with pytest.raises(TypeError, match=r"a transition is the change of exactly one field"):
        invalidate(Entry, keys=["k"], changed=["title", "slug"], was="draft")
    with pytest.raises(TypeError, match=r"changes_to=X already means was_not=X and is_now=X"):
        invalidate(Entry, keys=["k"], changed="title", changes_to="live", was_not="draft")
    with pytest.raises(ValueError, match=r"has no field 'status'"):
        invalidate(Entry, keys=["k"], changed="status", was="draft")


def test_rule_transition_lazy_sender_checked_when_it_resolves():
    fresh = Registry(name="test-rule-transition")
    with fresh.isolated():
        from signalhooks.hooktypes import Event, Hook, Transition

        fresh.add(
            Hook(
                func=lambda **kw: None,
                event=Event.POST_SAVE,
                sender="cacheapp.Entry",
                changed=frozenset({"status"}),
                transition=Transition(field="status", was="draft"),
                kind="rule",
            )
        )
        with pytest.raises(ImproperlyConfigured, match=r"has no field 'status'"):
            fresh.setup()
    rule = invalidate("cacheapp.Entry", keys=["lazy"], changed="title", is_now="live")
    assert rule.transition is not None and rule.transition.is_now == "live"
    fill("lazy")
    Entry.objects.create(title="live", slug="l")
    assert present("lazy") == set()


def test_rule_transition_shown_by_the_command(capsys):
    invalidate(Entry, keys=["k"], changed="title", was="draft", is_not="gone")
    call_command("signalhooks", "--json")
    listed = json.loads(capsys.readouterr().out)["cacheapp.Entry"]
    assert {"changed": ["title"], "was": "draft", "is_not": "gone"} in [
        h["conditions"] for h in listed if h["kind"] == "rule"
    ]
