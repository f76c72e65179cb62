from __future__ import annotations

import datetime
import threading
from decimal import Decimal
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import F
from django.db.models.signals import post_delete
from django.forms import modelform_factory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from signalhooks import counter, invalidate, post_save, recount, total, touch
from signalhooks.checks import check_hooks
from signalhooks.registry import registry
from signalhooks.related import (
    BATCH,
    Counter,
    Relation,
    can_return_from_update,
    finish_relations,
)
from signalhooks.testing import record_signalhooks
from tests.cacheapp.models import Entry
from tests.relatedapp.models import (
    Content,
    Line,
    Note,
    Order,
    Page,
    Post,
    Product,
    Reply,
    ReplyProxy,
    Tag,
    Tagging,
    Topic,
    Vote,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def counters():
    counter(Reply, "post", "comment_count")
    counter(Reply, "post", "approved_count", where={"approved": True})
    touch(Reply, "post", "updated_at")


def counts(post):
    post.refresh_from_db()
    return post.comment_count, post.approved_count


def updates(queries):
    return [q["sql"] for q in queries if q["sql"].startswith("UPDATE")]


# -- counting ---------------------------------------------------------------------------


def test_counter_create_and_delete_cost_one_update_each(counters, django_assert_num_queries):
    post = Post.objects.create()
    with django_assert_num_queries(2):  # INSERT, one UPDATE of the post
        first = Reply.objects.create(post=post, approved=True)
    Reply.objects.create(post=post)
    assert counts(post) == (2, 1)
    with django_assert_num_queries(2):  # DELETE, one UPDATE of the post
        first.delete()
    assert counts(post) == (1, 0)


def test_counter_update_is_one_statement_in_the_database(counters):
    post = Post.objects.create()
    with CaptureQueriesContext(connection) as queries:
        Reply.objects.create(post=post, approved=True)
    [sql] = updates(queries)
    plain = sql.replace('"', "").replace("`", "")
    # F()-style arithmetic in the database, and the touch in the same statement.
    assert "comment_count = (relatedapp_post.comment_count + 1)" in plain
    assert "approved_count = (relatedapp_post.approved_count + 1)" in plain
    assert "updated_at = " in plain
    assert not [q for q in queries if q["sql"].startswith("SELECT")]  # no read-modify-write


def test_counter_cascade_from_the_parent_skips_the_doomed_parent(counters):
    post = Post.objects.create()
    Reply.objects.bulk_create([Reply(post=post) for _ in range(3)])
    with CaptureQueriesContext(connection) as queries:
        post.delete()
    assert not Reply.objects.exists()
    # No UPDATE of the row being deleted (one per reply); Django's own SET_NULL of
    # Reply.quoted is the only UPDATE.
    assert [sql for sql in updates(queries) if "relatedapp_post" in sql] == []


def test_counter_cascade_from_elsewhere_still_counts(counters):
    post = Post.objects.create()
    user = User.objects.create(username="u")
    Reply.objects.create(post=post, author=user, approved=True)
    Reply.objects.create(post=post)
    user.delete()  # cascades to the user's reply; the post stays
    assert counts(post) == (1, 0)
    Post.objects.filter(pk=post.pk).delete()  # a queryset origin: counted, harmlessly
    assert not Reply.objects.exists() and not Post.objects.exists()


def test_counter_moves_between_parents_and_to_and_from_none(counters):
    first, second = Post.objects.create(), Post.objects.create()
    reply = Reply.objects.create(post=first, approved=True)
    reply.post = second
    reply.save()
    assert counts(first) == (0, 0) and counts(second) == (1, 1)
    reply.post = None
    reply.save()
    assert counts(second) == (0, 0)
    reply.post = first
    reply.save()
    assert counts(first) == (1, 1)
    reply.post_id = second.pk  # by attname too
    reply.save()
    assert counts(first) == (0, 0) and counts(second) == (1, 1)


def test_counter_two_foreign_keys_of_one_child(counters):
    counter(Reply, "quoted", "quote_count")
    post, quoted = Post.objects.create(), Post.objects.create()
    with CaptureQueriesContext(connection) as queries:
        reply = Reply.objects.create(post=post, quoted=quoted)
    assert len(updates(queries)) == 2  # one per parent
    assert Post.objects.get(pk=quoted.pk).quote_count == 1
    reply.quoted = post
    reply.save()
    assert [p.quote_count for p in Post.objects.order_by("pk")] == [1, 0]
    quoted.delete()
    assert counts(post) == (1, 0)


def test_counter_orphans_cost_nothing(django_assert_num_queries):
    counter(Reply, "post", "comment_count")
    with django_assert_num_queries(1):
        orphan = Reply.objects.create(post=None)
    with django_assert_num_queries(1):
        orphan.delete()


def test_counter_unrelated_save_costs_nothing(django_assert_num_queries):
    counter(Reply, "post", "comment_count")
    post = Post.objects.create()
    reply = Reply.objects.create(post=post)
    reply.text = "edited"
    with django_assert_num_queries(1):
        reply.save()
    assert counts(post) == (1, 0)


def test_counter_where_transitions_move_the_count(counters):
    post = Post.objects.create()
    reply = Reply.objects.create(post=post, approved=False)
    assert counts(post) == (1, 0)
    reply.approved = True
    reply.save()
    assert counts(post) == (1, 1)
    reply.approved = False
    reply.save()
    assert counts(post) == (1, 0)
    reply.approved = True
    reply.post = second = Post.objects.create()  # both at once
    reply.save()
    assert counts(post) == (0, 0) and counts(second) == (1, 1)


def test_counter_where_on_a_foreign_key_by_object_or_none():
    staff = User.objects.create(username="staff")
    counter(Reply, "post", "comment_count", where={"author": None})
    counter(Reply, "post", "approved_count", where={"author": staff})
    post = Post.objects.create()
    Reply.objects.create(post=post)
    reply = Reply.objects.create(post=post, author=staff)
    assert counts(post) == (1, 1)
    reply.author = None
    reply.save()
    assert counts(post) == (2, 0)
    assert recount(Post) == {"comment_count": {}, "approved_count": {}}


def test_counter_never_goes_below_zero():
    # A counter added to existing rows starts at 0: deleting must not fail on a
    # PositiveIntegerField (a CHECK constraint) nor show -1. recount() repairs it.
    post = Post.objects.create()
    reply = Reply.objects.create(post=post)
    counter(Reply, "post", "comment_count")
    reply.delete()
    assert counts(post) == (0, 0)


def test_counter_declared_again_counts_once():
    counter(Reply, "post", "comment_count")
    counter(Reply, "post_id", "comment_count")  # a module imported twice
    touch(Reply, "post", "updated_at")
    touch(Reply, "post", "updated_at")
    post = Post.objects.create()
    with CaptureQueriesContext(connection) as queries:
        Reply.objects.create(post=post)
    assert len(updates(queries)) == 1
    assert counts(post) == (1, 0)


def test_counter_through_a_proxy_of_the_child(counters):
    post = Post.objects.create()
    reply = ReplyProxy.objects.create(post=post, approved=True)
    assert counts(post) == (1, 1)
    reply.delete()
    assert counts(post) == (0, 0)


def test_counter_runs_before_user_hooks_so_they_see_the_new_count(counters):
    seen = []

    @post_save(Reply, created=True)
    def read_count(instance, **kwargs):
        seen.append(instance.post.comment_count)

    post = Post.objects.create()
    Reply.objects.create(post=post)
    Reply.objects.create(post=post)
    assert seen == [1, 2]


def test_counter_is_rolled_back_with_the_child(counters):
    post = Post.objects.create()
    with pytest.raises(RuntimeError), transaction.atomic():
        Reply.objects.create(post=post)
        raise RuntimeError
    assert counts(post) == (0, 0)


@pytest.mark.django_db(databases=["default", "other"])
def test_counter_on_another_database(counters):
    post = Post.objects.using("other").create()
    with CaptureQueriesContext(connections["other"]) as queries:
        Reply.objects.using("other").create(post=post, approved=True)
    assert len(updates(queries)) == 1
    post.refresh_from_db(using="other")
    assert (post.comment_count, post.approved_count) == (1, 1)
    assert not Post.objects.exists()


def test_related_readme_example(counters, django_assert_num_queries):
    post = Post.objects.create()
    with django_assert_num_queries(2):
        comment = Reply.objects.create(post=post, approved=False)
    assert (post.comment_count, post.approved_count) == (1, 0)
    comment.approved = True
    comment.save()
    assert post.approved_count == 1
    assert recount(Post) == {"comment_count": {}, "approved_count": {}}


# -- saves that did not load or write every field ---------------------------------------


def test_counter_update_fields_without_the_foreign_key_moves_nothing(counters):
    first, second = Post.objects.create(), Post.objects.create()
    reply = Reply.objects.create(post=first)
    reply.post = second
    reply.approved = True
    reply.save(update_fields=["approved"])  # the row still points at first
    assert counts(first) == (1, 1) and counts(second) == (0, 0)
    reply.save()
    assert counts(first) == (0, 0) and counts(second) == (1, 1)


def test_counter_deferred_instance_save_and_delete(counters, django_assert_num_queries):
    post = Post.objects.create()
    Reply.objects.create(post=post)
    reply = Reply.objects.only("approved").get()
    reply.approved = True
    with django_assert_num_queries(3):  # UPDATE, SELECT the unloaded post_id, UPDATE post
        reply.save()
    assert counts(post) == (1, 1)
    deferred = Reply.objects.only("text").get()
    with django_assert_num_queries(3):  # SELECT the unloaded columns first, DELETE, UPDATE
        deferred.delete()
    assert counts(post) == (0, 0)


def test_counter_deferred_fields_assigned_read_the_old_row_first(
    counters, django_assert_num_queries
):
    first, second = Post.objects.create(), Post.objects.create()
    Reply.objects.create(post=first)
    reply = Reply.objects.only("text").get()
    reply.approved = True
    with django_assert_num_queries(3):  # SELECT the old values, UPDATE, UPDATE post
        reply.save()
    assert counts(first) == (1, 1)
    reply = Reply.objects.only("text").get()
    reply.post = second
    reply.save()
    assert counts(first) == (0, 0) and counts(second) == (1, 1)
    assert recount(Post) == {"comment_count": {}, "approved_count": {}}


def test_counter_deferred_rows_deleted_or_moved_in_bulk(counters):
    first, second = Post.objects.create(), Post.objects.create()
    Reply.objects.create(post=first, approved=True)
    Reply.objects.create(post=first)
    moved = Reply.objects.only("text").get(approved=True)
    moved.post = second  # the foreign key and where= field were never loaded
    moved.save()
    assert counts(first) == (1, 0) and counts(second) == (1, 1)
    Reply.objects.only("text").delete()  # a queryset of deferred rows
    assert counts(first) == (0, 0) and counts(second) == (0, 0)


def test_counter_deferred_delete_after_assignment_reads_the_row(counters):
    first, second = Post.objects.create(), Post.objects.create()
    Reply.objects.create(post=first)
    reply = Reply.objects.only("text").get()
    reply.post = second  # not saved: the row still counts for first
    reply.delete()
    assert counts(first) == (0, 0) and counts(second) == (0, 0)


def test_counter_unsaved_change_then_delete_uses_the_stored_parent(counters):
    first, second = Post.objects.create(), Post.objects.create()
    reply = Reply.objects.create(post=first)
    reply.post = second
    reply.delete()
    assert counts(first) == (0, 0) and counts(second) == (0, 0)


def test_counter_post_delete_sent_by_other_code(counters):
    post = Post.objects.create()
    reply = Reply.objects.create(post=post)
    Reply.objects.filter(pk=reply.pk)._raw_delete(using="default")
    post_delete.send(sender=Reply, instance=reply, using="default", origin=reply)
    assert counts(post) == (0, 0)


# -- touch ------------------------------------------------------------------------------


def test_touch_on_create_change_and_delete(counters):
    long_ago = timezone.now() - datetime.timedelta(days=365)
    post = Post.objects.create(updated_at=long_ago)

    def touched():
        stamp = Post.objects.get(pk=post.pk).updated_at
        Post.objects.filter(pk=post.pk).update(updated_at=long_ago)
        return stamp is not None and stamp > long_ago

    reply = Reply.objects.create(post=post)
    assert touched()
    reply.text = "changed"  # counts nothing, still a change
    reply.save()
    assert touched()
    reply.delete()
    assert touched()
    Reply.objects.create(post=None)
    assert not touched()


def test_touch_alone_issues_one_update(django_assert_num_queries):
    touch(Reply, "post", "updated_at")
    post = Post.objects.create()
    with django_assert_num_queries(2):
        Reply.objects.create(post=post)
    post.refresh_from_db()
    assert post.updated_at is not None and post.comment_count == 0


def test_touch_date_field_through_a_to_field_key_with_a_nullable_counter():
    counter(Tagging, "tag", "use_count")
    touch(Tagging, "tag", "used_on")
    tag = Tag.objects.create(slug="django")  # use_count is NULL: counts from 0
    tagging = Tagging.objects.create(tag=tag)
    tag.refresh_from_db()
    assert (tag.use_count, tag.used_on) == (1, timezone.localdate())
    Tagging.objects.create(tag=tag)
    tagging.note = "x"
    tagging.save(update_fields=["note"])  # the key comes from what was loaded
    tag.refresh_from_db()
    assert tag.use_count == 2
    Tag.objects.filter(pk=tag.pk).update(use_count=None)
    tagging.delete()
    tag.refresh_from_db()
    assert tag.use_count == 0
    assert recount(Tag) == {"use_count": {tag.pk: (0, 1)}}


# -- the parent in memory and its cache rules -------------------------------------------


def test_cached_parent_in_memory_reloads_kept_fields(counters, django_assert_num_queries):
    post = Post.objects.create(title="old")
    reply = Reply(post=post)
    reply.save()
    # reply.post is post: its kept fields were dropped, so they load fresh on access.
    assert reply.post is post
    with django_assert_num_queries(1):
        assert post.comment_count == 1
    post.title = "new"
    Reply.objects.create(post=post)  # dropped again
    post.save()  # writes only the fields it holds: no stale count goes back
    assert counts(post) == (2, 0)
    post.refresh_from_db()
    assert post.title == "new"


def test_parent_save_never_writes_back_a_stale_counter_or_touch(counters):
    post = Post.objects.create(title="old")
    edited = Post.objects.get(pk=post.pk)  # the edit view loads the post ...
    Reply.objects.create(post=post, approved=True)  # ... a reply arrives meanwhile ...
    stamp = Post.objects.get(pk=post.pk).updated_at
    edited.title = "new"
    edited.save()  # ... and the view saves what it loaded
    row = Post.objects.get(pk=post.pk)
    assert (row.title, row.comment_count, row.approved_count) == ("new", 1, 1)
    assert row.updated_at == stamp is not None
    # The instance holds no F(): its next read loads the fresh values.
    assert (edited.comment_count, edited.updated_at) == (1, stamp)
    Reply.objects.create(post=post)
    edited.title = "again"
    edited.save()  # the values read after the last save are copies of the row, too
    assert counts(post) == (2, 1)


def test_parent_save_explicit_assignment_wins(counters):
    post = Post.objects.create()
    edited = Post.objects.get(pk=post.pk)
    Reply.objects.create(post=post)
    edited.comment_count = 7
    edited.updated_at = moment = timezone.now() - datetime.timedelta(days=1)
    edited.save()
    row = Post.objects.get(pk=post.pk)
    assert (row.comment_count, row.updated_at) == (7, moment)
    assert edited.comment_count == 7
    edited.comment_count = F("comment_count") + 1  # an expression is the user's too
    edited.save()
    assert counts(post) == (8, 0)


def test_parent_save_update_fields_and_model_form(counters):
    post = Post.objects.create()
    edited = Post.objects.get(pk=post.pk)
    Reply.objects.create(post=post)
    edited.title = "x"
    with CaptureQueriesContext(connection) as queries:
        edited.save(update_fields=["title", "comment_count"])
    assert len(queries) == 1  # nothing written outside update_fields
    assert counts(post) == (1, 0)
    form_class = modelform_factory(Post, fields=["title", "comment_count", "approved_count"])
    instance = Post.objects.get(pk=post.pk)
    Reply.objects.create(post=post, approved=True)
    form = form_class({"title": "form", "comment_count": 1, "approved_count": 0}, instance=instance)
    assert form.is_valid(), form.errors
    form.save()  # the values the form showed, unchanged: the rows' counts stand
    assert counts(post) == (2, 1)
    assert Post.objects.get(pk=post.pk).title == "form"


def test_parent_save_guard_covers_a_parent_loaded_without_the_fields(counters):
    post = Post.objects.create()
    edited = Post.objects.only("title").get(pk=post.pk)
    Reply.objects.create(post=post)
    assert edited.comment_count == 1  # loaded lazily: a copy of the row now
    Reply.objects.create(post=post)
    edited.save()
    assert counts(post) == (2, 0)


def test_parent_save_on_an_inherited_counter_and_a_lazy_relation():
    counter(Note, "page", "comment_count")
    page = Page.objects.create()
    edited = Page.objects.get(pk=page.pk)
    Note.objects.create(page=page)
    edited.title = "x"
    edited.save()
    assert Content.objects.get(pk=page.pk).comment_count == 1
    topic = Topic.objects.create()  # declared in the models module, before Vote existed
    edited_topic = Topic.objects.get(pk=topic.pk)
    Vote.objects.create(topic=topic)
    edited_topic.save()
    topic.refresh_from_db()
    assert topic.vote_count == 1 and topic.voted_at is not None


@pytest.mark.django_db(transaction=True)
def test_counter_runs_the_parents_cache_rules(counters):
    invalidate(Post, keys=["post:{pk}"])
    post = Post.objects.create()
    other = Post.objects.create()
    cache = caches["default"]
    cache.set_many({f"post:{post.pk}": "stale", f"post:{other.pk}": "fresh"})
    with transaction.atomic():
        Reply.objects.create(post=post)
    assert cache.get(f"post:{post.pk}") is None
    assert cache.get(f"post:{other.pk}") == "fresh"


@pytest.mark.django_db(transaction=True)
def test_autocommit_save_flushes_its_own_and_its_parents_rules_in_one_round_trip(
    counters, round_trips, flushes
):
    invalidate(Post, keys=["post:{pk}"], tags=["posts"])
    invalidate(Reply, keys=["reply:{post_id}:{text}"])
    post = Post.objects.create()
    cache = caches["default"]
    cache.set(f"post:{post.pk}", "stale")
    flushes.clear()
    before = round_trips()
    Reply.objects.create(post=post, text="hi")
    assert round_trips() - before == 1
    assert flushes == [
        {
            "cache": "default",
            "keys": sorted([f"post:{post.pk}", f"reply:{post.pk}:hi"]),
            "tags": ["posts"],
            "patterns": [],
        }
    ]
    assert cache.get(f"post:{post.pk}") is None


@pytest.mark.django_db(transaction=True)
def test_autocommit_save_whose_parent_has_two_rules_flushes_once(counters, round_trips, flushes):
    invalidate(Post, keys=["post:{pk}"])
    invalidate(Post, tags=["posts"])
    post = Post.objects.create()
    flushes.clear()
    before = round_trips()
    Reply.objects.create(post=post)  # one hook of its own: the counter's
    assert round_trips() - before == 1
    assert [(f["keys"], f["tags"]) for f in flushes] == [([f"post:{post.pk}"], ["posts"])]


@pytest.mark.django_db(transaction=True)
def test_autocommit_save_whose_hook_raises_still_flushes(counters, flushes):
    invalidate(Post, keys=["post:{pk}"])
    invalidate(Reply, keys=["reply:{text}"])

    @post_save(Reply)
    def boom(**kwargs):
        raise RuntimeError("boom")

    post = Post.objects.create()
    caches["default"].set(f"post:{post.pk}", "stale")
    flushes.clear()
    with pytest.raises(RuntimeError, match="boom"):
        Reply.objects.create(post=post, text="hi")  # the row is written all the same
    assert [f["keys"] for f in flushes] == [sorted([f"post:{post.pk}", "reply:hi"])]
    assert caches["default"].get(f"post:{post.pk}") is None
    assert Reply.objects.filter(text="hi").exists()


@pytest.mark.django_db(transaction=True)
def test_counter_cache_rule_declared_after_the_first_save_still_runs(counters):
    post = Post.objects.create()
    Reply.objects.create(post=post)  # the relation has worked out its plan
    invalidate(Post, keys=["post:{pk}"])
    cache = caches["default"]
    cache.set(f"post:{post.pk}", "stale")
    Reply.objects.create(post=post)
    assert cache.get(f"post:{post.pk}") is None


def _update_from_an_old_sqlite(monkeypatch):
    """Make the connection say what an SQLite before 3.35 says: no UPDATE ... RETURNING."""
    features = connection.features
    # Django 6.0+ has a flag for UPDATE; Django 5.2 one for INSERT, from the same release.
    flag = (
        "can_return_rows_from_update"
        if hasattr(features, "can_return_rows_from_update")
        else "can_return_columns_from_insert"
    )
    # A plain attribute or a cached_property is set on the instance; Django 6.0 makes the
    # flag a property, which only the class can replace.
    if isinstance(getattr(type(features), flag, None), property):
        monkeypatch.setattr(type(features), flag, False)
    else:
        monkeypatch.setattr(features, flag, False)


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "old-sqlite"])
def test_counter_and_touch_read_the_parents_template_fields_back_in_the_update(
    returning, monkeypatch
):
    counter(Reply, "post", "comment_count")
    touch(Reply, "post", "updated_at")
    invalidate(Post, keys=["post:{title}", "post:{pk}:{updated_at}"], tags=["t:{comment_count}"])
    post = Post.objects.create(title="hello")
    if not returning:
        _update_from_an_old_sqlite(monkeypatch)
    with record_signalhooks() as record:
        with CaptureQueriesContext(connection) as queries:
            Reply.objects.create(post=post)
        post.refresh_from_db()
        record.assert_invalidated(
            keys=["post:hello", f"post:{post.pk}:{post.updated_at}"], tags=["t:1"]
        )
    sql = [q["sql"] for q in queries]
    if returning:  # the INSERT and one UPDATE, as the README says
        assert len(sql) == 2 and "RETURNING" in sql[1].split("SET")[1]
    else:  # the INSERT, the UPDATE, a SELECT of the post's template fields
        assert len(sql) == 3 and "RETURNING" not in sql[1] and sql[2].startswith("SELECT")
    assert post.comment_count == 1


def test_counter_moving_two_parents_reads_both_back(counters, django_assert_num_queries):
    invalidate(Post, keys=["post:{title}"])
    first, second = Post.objects.create(title="a"), Post.objects.create(title="b")
    reply = Reply.objects.create(post=first, approved=True)
    reply.post = second
    with record_signalhooks() as record:
        with django_assert_num_queries(3):  # UPDATE reply, UPDATE first, UPDATE second
            reply.save()
        record.assert_invalidated(keys=["post:a", "post:b"])


def test_counter_parent_rule_on_an_ancestor_table_reads_it_with_a_select():
    counter(Note, "page", "comment_count")  # Page.comment_count is Content's column
    invalidate(Page, keys=["page:{title}"])
    page = Page.objects.create(title="p")
    with record_signalhooks() as record:
        with CaptureQueriesContext(connection) as queries:
            Note.objects.create(page=page)
        record.assert_invalidated(keys=["page:p"])
    assert queries[-1]["sql"].startswith("SELECT")
    assert not any("RETURNING" in q["sql"] for q in queries[1:])


def test_counter_parent_without_cache_rules_costs_no_select(counters):
    invalidate(Entry, keys=["entry:{pk}"])  # rules elsewhere change nothing here
    post = Post.objects.create()
    with CaptureQueriesContext(connection) as queries:
        Reply.objects.create(post=post)
    assert len(queries) == 2


# -- multi-table inheritance: the counter on an ancestor's table ------------------------


def test_counter_on_an_inherited_parent_field():
    counter(Note, "page", "comment_count")
    first, second = Page.objects.create(), Page.objects.create()
    note = Note.objects.create(page=first)
    Note.objects.create(page=first)
    note.page = second
    note.save()
    assert [Content.objects.get(pk=p.pk).comment_count for p in (first, second)] == [1, 1]
    Content.objects.filter(pk=second.pk).update(comment_count=0)
    note.delete()  # never below zero on this path either
    Note.objects.bulk_create([Note(page=second) for _ in range(3)])
    assert Content.objects.get(pk=second.pk).comment_count == 3
    Content.objects.filter(pk=first.pk).update(comment_count=7)
    assert recount(Page) == {"comment_count": {first.pk: (7, 1)}}
    assert Content.objects.get(pk=first.pk).comment_count == 1


# -- bulk operations through HooksQuerySet ----------------------------------------------


def test_bulk_create_queries_grow_with_parents_not_children(counters):
    posts = Post.objects.bulk_create([Post() for _ in range(10)])
    replies = [Reply(post=posts[i % 10], approved=i % 2 == 0) for i in range(1000)]
    with CaptureQueriesContext(connection) as queries:
        Reply.objects.bulk_create(replies)
    # Even posts got 100 approved replies, odd ones 100 unapproved: two distinct
    # changes, one UPDATE each (the touch rides along).
    assert len(updates(queries)) == 2
    assert [counts(p) for p in posts] == [(100, 100), (100, 0)] * 5
    inserts = [q for q in queries if q["sql"].startswith("INSERT")]
    assert len(queries) == len(inserts) + 2


def test_bulk_create_over_many_parents_batches_the_update():
    counter(Reply, "post", "comment_count")
    posts = Post.objects.bulk_create([Post() for _ in range(BATCH * 2 + 1)])
    with CaptureQueriesContext(connection) as queries:
        Reply.objects.bulk_create([Reply(post=p) for p in posts])
    assert len(updates(queries)) == 3
    assert set(Post.objects.values_list("comment_count", flat=True)) == {1}


def test_queryset_update_moves_children_and_delete_counts(counters):
    first, second = Post.objects.create(), Post.objects.create()
    Reply.objects.bulk_create([Reply(post=first, approved=True) for _ in range(4)])
    Reply.objects.filter(pk__in=Reply.objects.values("pk")[:3]).update(post=second)
    assert counts(first) == (1, 1) and counts(second) == (3, 3)
    Reply.objects.filter(post=second).update(approved=False)
    assert counts(second) == (3, 0)
    Reply.objects.filter(post=second).update(approved=~F("approved"))  # expressions too
    assert counts(second) == (3, 3)
    replies = list(Reply.objects.filter(post=second))
    for reply in replies:
        reply.approved = False
    Reply.objects.bulk_update(replies, ["approved"])
    assert counts(second) == (3, 0)
    Reply.objects.filter(post=second).delete()
    assert counts(second) == (0, 0) and counts(first) == (1, 1)


def test_queryset_update_counting_nothing_costs_nothing(django_assert_num_queries):
    counter(Reply, "post", "comment_count")
    post = Post.objects.create()
    Reply.objects.create(post=post)
    with django_assert_num_queries(2):  # HooksQuerySet's SELECT, the UPDATE itself
        Reply.objects.update(text="x")
    assert counts(post) == (1, 0)


def test_queryset_update_with_touch_touches_each_parent_once():
    touch(Reply, "post", "updated_at")
    posts = Post.objects.bulk_create([Post(), Post()])
    Reply.objects.bulk_create([Reply(post=p) for p in posts for _ in range(5)])
    Post.objects.update(updated_at=None)
    with CaptureQueriesContext(connection) as queries:
        Reply.objects.update(text="x")
    assert len(updates(queries)) == 2  # the replies, then both posts at once
    assert Post.objects.filter(updated_at__isnull=True).count() == 0


@pytest.mark.django_db(transaction=True)
def test_bulk_create_runs_the_parents_cache_rules_once(counters):
    invalidate(Post, keys=["post:{pk}"])
    posts = Post.objects.bulk_create([Post() for _ in range(3)])
    cache = caches["default"]
    cache.set_many({f"post:{p.pk}": "stale" for p in posts})
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        Reply.objects.bulk_create([Reply(post=p) for p in posts[:2] for _ in range(10)])
    selects = [q for q in queries if q["sql"].startswith("SELECT")]
    # The parents' rows for their rules: read back by their UPDATE, else once.
    assert len(selects) == (0 if can_return_from_update(connection) else 1)
    assert [cache.get(f"post:{p.pk}") for p in posts] == [None, None, "stale"]


# -- declared while the models load -----------------------------------------------------


def test_counter_and_touch_declared_in_the_models_module(django_assert_num_queries):
    topic = Topic.objects.create()
    with django_assert_num_queries(1 + 1):  # INSERT, one UPDATE (vote_count + voted_at)
        votes = Vote.objects.bulk_create([Vote(topic=topic) for _ in range(3)])
    votes[0].delete()
    topic.refresh_from_db()
    assert topic.vote_count == 2 and topic.voted_at is not None


# -- concurrency ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not settings.IS_POSTGRES,
    reason="SQLite allows one writer at a time: concurrent writers fail with 'database is "
    "locked' instead of racing, so there is no lost update to catch",
)
def test_counter_concurrent_creates_and_deletes_lose_nothing():
    counter(Reply, "post", "comment_count")
    touch(Reply, "post", "updated_at")
    post = Post.objects.create()
    barrier = threading.Barrier(5)
    errors = []

    def work(action):
        try:
            barrier.wait(10)
            action()
        except Exception as error:  # pragma: no cover - reported by the assert below
            errors.append(error)
        finally:
            connection.close()

    def create():
        for _ in range(50):
            Reply.objects.create(post=post)

    def edit():
        # The edit view of the post, saving what it loaded while replies come and go.
        for i in range(50):
            edited = Post.objects.get(pk=post.pk)
            edited.title = str(i)
            edited.save()

    def delete(ids):
        def run():
            for reply in Reply.objects.filter(pk__in=ids):
                reply.delete()

        return run

    def race(actions):
        threads = [threading.Thread(target=work, args=(action,)) for action in actions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        post.refresh_from_db()
        return post.comment_count

    assert race([create] * 4 + [edit]) == 200
    ids = list(Reply.objects.values_list("pk", flat=True))
    assert race([delete(ids[i::4]) for i in range(4)] + [edit]) == 0


# -- recount ----------------------------------------------------------------------------


def test_recount_repairs_all_counters_in_two_queries(counters, django_assert_num_queries):
    post, empty = Post.objects.create(), Post.objects.create()
    Reply.objects.create(post=post, approved=True)
    Reply.objects.create(post=post)
    Post.objects.filter(pk=post.pk).update(comment_count=9, approved_count=0)
    Post.objects.filter(pk=empty.pk).update(comment_count=4)
    with django_assert_num_queries(2):  # SELECT the wrong rows, UPDATE them
        fixed = recount(Post)
    assert fixed == {
        "comment_count": {post.pk: (9, 2), empty.pk: (4, 0)},
        "approved_count": {post.pk: (0, 1)},
    }
    assert counts(post) == (2, 1) and counts(empty) == (0, 0)
    with django_assert_num_queries(1):
        assert recount("relatedapp.Post") == {"comment_count": {}, "approved_count": {}}
    with django_assert_num_queries(0):
        assert recount(Entry) == {}


def test_recount_many_rows_batches_the_update(django_assert_num_queries):
    counter(Reply, "post", "comment_count")
    Post.objects.bulk_create([Post(comment_count=1) for _ in range(BATCH + 1)])
    with django_assert_num_queries(3):
        fixed = recount(Post)
    assert len(fixed["comment_count"]) == BATCH + 1
    assert set(Post.objects.values_list("comment_count", flat=True)) == {0}


@pytest.mark.django_db(transaction=True)
def test_recount_runs_the_parents_cache_rules(counters):
    invalidate(Post, keys=["post:{pk}"])
    post, right = Post.objects.create(), Post.objects.create()
    Post.objects.filter(pk=post.pk).update(comment_count=3)
    cache = caches["default"]
    cache.set_many({f"post:{post.pk}": "stale", f"post:{right.pk}": "fresh"})
    recount(Post)
    assert cache.get(f"post:{post.pk}") is None
    assert cache.get(f"post:{right.pk}") == "fresh"


def test_recount_command_reports_what_it_fixed(counters):
    post = Post.objects.create()
    Reply.objects.create(post=post)
    Post.objects.filter(pk=post.pk).update(comment_count=5)
    out = StringIO()
    call_command("signalhooks", "recount", stdout=out)
    assert out.getvalue().splitlines() == [
        "relatedapp.Post: 1 counter value(s) fixed; touches are not recounted: updated_at",
        f"  pk={post.pk} comment_count: 5 -> 1",
        "relatedapp.Topic: 0 counter value(s) fixed; touches are not recounted: voted_at",
    ]
    out = StringIO()
    call_command("signalhooks", "recount", "relatedapp.Post", "--database", "default", stdout=out)
    assert out.getvalue().startswith("relatedapp.Post: 0 counter value(s) fixed;")
    out = StringIO()
    call_command("signalhooks", "recount", "relatedapp.Tag", stdout=out)
    assert out.getvalue() == "relatedapp.Tag: no counters or totals\n"
    with pytest.raises(CommandError, match="app_label.Model"):
        call_command("signalhooks", "recount", "nope.Nope")


@pytest.mark.django_db(databases=["default", "other"])
def test_recount_command_on_another_database(counters):
    post = Post.objects.using("other").create(comment_count=2)
    out = StringIO()
    call_command("signalhooks", "recount", "relatedapp.Post", "--database", "other", stdout=out)
    assert f"pk={post.pk} comment_count: 2 -> 0" in out.getvalue()


# -- totals -----------------------------------------------------------------------------


@pytest.fixture
def totals():
    total(Line, "order", "total", of="amount")
    total(Line, "order", "paid_total", of="amount", where={"paid": True})
    total(Line, "order", "quantity", of="quantity")
    total(Line, "order", "weight", of="weight")
    counter(Line, "order", "line_count")
    touch(Line, "order", "updated_at")


def sums(order):
    order.refresh_from_db()
    return order.total, order.paid_total, order.quantity, order.line_count


def assert_recount_finds_nothing():
    fixed = recount(Order)
    assert fixed == {name: {} for name in fixed} and len(fixed) == 5


def test_total_create_change_move_and_delete(totals, django_assert_num_queries):
    first, second = Order.objects.create(), Order.objects.create()
    with django_assert_num_queries(2):  # INSERT, one UPDATE: totals, counter and touch
        line = Line.objects.create(order=first, amount="1.50", quantity=2, weight=0.5)
    Line.objects.create(order=first, amount=None, quantity=3)  # NULL adds nothing
    assert sums(first) == (Decimal("1.50"), 0, 5, 2)
    assert first.weight == 0.5 and first.updated_at is not None
    line.amount = Decimal("2.25")
    line.save()
    assert sums(first) == (Decimal("2.25"), 0, 5, 2)
    line.paid = True  # into the where= condition
    line.save()
    assert sums(first) == (Decimal("2.25"), Decimal("2.25"), 5, 2)
    line.order = second  # to another parent, with a new amount at once
    line.amount = Decimal("-1.00")  # a negative amount is an amount (a refund)
    line.save()
    assert sums(first) == (0, 0, 3, 1)
    assert sums(second) == (Decimal("-1.00"), Decimal("-1.00"), 2, 1)
    line.amount = None
    line.save()
    assert sums(second) == (0, 0, 2, 1)
    assert_recount_finds_nothing()
    line.delete()
    assert sums(second) == (0, 0, 0, 0)
    assert_recount_finds_nothing()


def test_recount_command_reports_counters_and_totals_apart(totals):
    order = Order.objects.create()
    Line.objects.create(order=order, amount="2.00", quantity=2)
    Order.objects.filter(pk=order.pk).update(total=9, quantity=0, line_count=1)
    out = StringIO()
    call_command("signalhooks", "recount", "relatedapp.Order", stdout=out)
    summary, total_fixed, quantity_fixed = out.getvalue().splitlines()
    assert summary == (
        "relatedapp.Order: 0 counter value(s) and 2 total value(s) fixed; "
        "touches are not recounted: updated_at"
    )
    assert total_fixed.startswith(f"  pk={order.pk} total: 9.00 -> 2")  # 2 or 2.00: per database
    assert quantity_fixed == f"  pk={order.pk} quantity: 0 -> 2"
    touch(Tagging, "tag", "used_on")
    out = StringIO()
    call_command("signalhooks", "recount", "relatedapp.Tag", stdout=out)
    assert (
        out.getvalue()
        == "relatedapp.Tag: no counters or totals; touches are not recounted: used_on\n"
    )


def test_total_update_is_one_statement_with_counter_and_touch(totals):
    order = Order.objects.create()
    with CaptureQueriesContext(connection) as queries:
        Line.objects.create(order=order, amount="3.00", paid=True)
    [sql] = updates(queries)
    plain = sql.replace('"', "").replace("`", "")
    assert "total = (CAST((relatedapp_order.total + " in plain or (
        "total = (relatedapp_order.total + " in plain
    )
    assert "COALESCE(relatedapp_order.quantity, 0) + " in plain  # a nullable total counts from 0
    assert "line_count = (relatedapp_order.line_count + 1)" in plain and "updated_at = " in plain


def test_total_cascades(totals):
    order, product = Order.objects.create(), Product.objects.create()
    Line.objects.create(order=order, product=product, amount="2.00")
    Line.objects.create(order=order, amount="1.00")
    product.delete()  # cascades to its line; the order stays
    assert sums(order) == (Decimal("1.00"), 0, 1, 1)
    with CaptureQueriesContext(connection) as queries:
        order.delete()  # cascades to its lines: no UPDATE of the doomed order
    assert updates(queries) == []
    assert not Line.objects.exists()


def test_total_expression_assigned_to_the_amount(totals):
    order = Order.objects.create()
    line = Line.objects.create(order=order, amount="1.00", quantity=2)
    line.amount = F("amount") + Decimal("0.50")
    line.quantity = F("quantity") * 3
    line.save()
    assert sums(order) == (Decimal("1.50"), 0, 6, 1)
    assert line.amount == Decimal("1.50")  # loads the value written, not an F()
    line.amount = Decimal("4.00")
    line.save()
    assert sums(order) == (Decimal("4.00"), 0, 6, 1)
    assert_recount_finds_nothing()


def test_total_bulk_paths(totals):
    first, second = Order.objects.create(), Order.objects.create()
    with CaptureQueriesContext(connection) as queries:
        Line.objects.bulk_create(
            [Line(order=first, amount="1.25") for _ in range(4)]
            + [Line(order=second, amount="0.50", paid=True) for _ in range(2)]
        )
    assert len(updates(queries)) == 2  # one per parent
    assert sums(first) == (Decimal("5.00"), 0, 4, 4)
    assert sums(second) == (Decimal("1.00"), Decimal("1.00"), 2, 2)
    Line.objects.filter(order=first).update(amount=F("amount") * 2)
    assert sums(first)[0] == Decimal("10.00")
    Line.objects.filter(pk__in=Line.objects.filter(order=first).values("pk")[:2]).update(
        order=second
    )
    assert sums(first)[0] == Decimal("5.00") and sums(second)[0] == Decimal("6.00")
    lines = list(Line.objects.filter(order=second))
    for line in lines:
        line.amount = Decimal("1.00")
    Line.objects.bulk_update(lines, ["amount"])
    assert sums(second) == (Decimal("4.00"), Decimal("2.00"), 4, 4)
    Line.objects.filter(order=second).delete()
    assert sums(second) == (0, 0, 0, 0)
    assert_recount_finds_nothing()


def test_total_recount_repairs_and_reports(totals, django_assert_num_queries):
    order = Order.objects.create()
    Line.objects.create(order=order, amount="1.50", quantity=2)
    Line.objects.create(order=order, amount="2.25", quantity=1, paid=True)
    Order.objects.filter(pk=order.pk).update(total=9, quantity=None, line_count=5)
    with django_assert_num_queries(2):  # SELECT the wrong rows, UPDATE them
        fixed = recount(Order)
    assert fixed == {
        "line_count": {order.pk: (5, 2)},
        "total": {order.pk: (Decimal("9.00"), Decimal("3.75"))},
        "paid_total": {},
        "quantity": {order.pk: (None, 3)},
        "weight": {},
    }
    assert sums(order) == (Decimal("3.75"), Decimal("2.25"), 3, 2)
    out = StringIO()
    Order.objects.filter(pk=order.pk).update(total=1)
    call_command("signalhooks", "recount", "relatedapp.Order", stdout=out)
    assert out.getvalue().splitlines() == [
        "relatedapp.Order: 0 counter value(s) and 1 total value(s) fixed; "
        "touches are not recounted: updated_at",
        f"  pk={order.pk} total: 1.00 -> 3.75",
    ]


def test_total_failing_update_dooms_the_transaction_of_the_save():
    total(Line, "product", "sold", of="quantity")  # sold is a PositiveIntegerField
    product = Product.objects.create()
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            Line.objects.create(product=product, quantity=-1)
        assert transaction.get_rollback()  # the INSERT must not stay without its total
    assert not Line.objects.exists()
    assert Product.objects.get(pk=product.pk).sold == 0


@pytest.mark.django_db(transaction=True)
def test_total_failing_update_fails_the_save_in_autocommit():
    total(Line, "product", "sold", of="quantity")
    product = Product.objects.create()
    with pytest.raises(IntegrityError):
        Line.objects.create(product=product, quantity=-1)
    assert Product.objects.get(pk=product.pk).sold == 0


def test_total_parent_save_never_writes_back_a_stale_total(totals):
    order = Order.objects.create(note="old")
    edited = Order.objects.get(pk=order.pk)
    Line.objects.create(order=order, amount="5.00", quantity=1)
    edited.note = "new"
    edited.save()
    assert sums(order) == (Decimal("5.00"), 0, 1, 1)
    assert order.note == "new"


def test_total_listed_by_the_command(totals):
    out = StringIO()
    call_command("signalhooks", stdout=out)
    [line] = [
        line for line in out.getvalue().splitlines() if "post_save" in line and "(order:" in line
    ]
    assert (
        "related(order: counter line_count; total total=sum(amount), "
        "paid_total=sum(amount)[paid=True], quantity=sum(quantity), weight=sum(weight); "
        "touch updated_at)" in line
    )
    total(Line, "product", "sold", of="quantity")  # a total alone is listed as a total
    out = StringIO()
    call_command("signalhooks", stdout=out)
    assert "post_save    total   related(product: total sold=sum(quantity))" in out.getvalue()


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (
            lambda: total(Line, "order", "note", of="amount"),
            r"total\(relatedapp.Line, 'order', 'note', of='amount'\) \(.*test_related.py:\d+\): "
            r"relatedapp.Order.note is "
            r"a CharField, not a numeric field. Sum into an IntegerField, DecimalField or "
            r"FloatField, e.g. add total = models.DecimalField\(max_digits=12, "
            r"decimal_places=2, default=0\) to Order.",
        ),
        (
            lambda: total(Line, "order", "nope", of="amount"),
            r"relatedapp.Order has no field 'nope'. Sum into .* e.g. add nope = ",
        ),
        (
            lambda: total(Line, "order", "total", of="note"),
            r"relatedapp.Line.note is a CharField, not a numeric field. of= names the Line "
            r"field to sum; numeric fields: amount, quantity, weight.",
        ),
        (
            lambda: total(Line, "order", "total", of="nope"),
            r"relatedapp.Line has no field 'nope'. of= names",
        ),
        (
            lambda: total(Line, "order", "quantity", of="amount"),
            r"relatedapp.Order.quantity is an integer field, but relatedapp.Line.amount is a "
            r"DecimalField: the fractions would be lost. Make Order.quantity a DecimalField too.",
        ),
        (
            lambda: total(Line, "order", "total", of="amount", where={"nope": 1}),
            r"where= names 'nope', which is not a field of relatedapp.Line",
        ),
    ],
)
def test_total_bad_input_fails_at_call_time(declare, message):
    before = registry.hooks()
    with pytest.raises(ImproperlyConfigured, match=message):
        declare()
    assert registry.hooks() == before


def test_total_and_counter_into_one_field_is_refused():
    total(Line, "order", "total", of="amount")
    total(Line, "order", "total", of="amount")  # declared again: nothing changes
    total(Line, "order", "line_count", of="quantity", where={"paid": True})
    with pytest.raises(
        ImproperlyConfigured,
        match=r"total\(relatedapp.Line, 'order', 'line_count', of='quantity', where=\{'paid': "
        r"True\}\) \(.*test_related.py:\d+\): relatedapp.Order.line_count is already kept by "
        r"counter\(relatedapp.Line, "
        r"'order', 'line_count'\) at .*test_related.py:\d+. Count each relation",
    ):
        counter(Line, "order", "line_count")


# -- listing, checks and bad input ------------------------------------------------------


def test_related_listed_by_the_command(counters):
    out = StringIO()
    call_command("signalhooks", stdout=out)
    lines = [line for line in out.getvalue().splitlines() if "related(post:" in line]
    assert [line.split()[:2] for line in lines] == [
        ["pre_save", "counter"],
        ["post_save", "counter"],
        ["pre_delete", "counter"],
        ["post_delete", "counter"],
    ]
    assert "counter comment_count, approved_count[approved=True]; touch updated_at" in lines[1]
    assert "priority=-1000" in lines[1] and "test_related.py" in lines[1]
    out = StringIO()
    call_command("signalhooks", stdout=out)
    assert any(
        "related(topic: counter vote_count; touch voted_at)" in line
        for line in out.getvalue().splitlines()
    )


def test_related_touch_only_is_listed_as_touch():
    touch(Tagging, "tag", "used_on")
    out = StringIO()
    call_command("signalhooks", stdout=out)
    assert "post_save    touch   related(tag: touch used_on)" in out.getvalue()


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (
            lambda: counter(Reply, "text", "comment_count"),
            r"counter\(relatedapp.Reply, 'text', ...\) \(.*test_related.py:\d+\): "
            r"relatedapp.Reply.text is a CharField, "
            r"not a foreign key. Name one of its foreign keys: post, quoted, author.",
        ),
        (
            lambda: touch(Reply, "nope", "updated_at"),
            r"relatedapp.Reply has no field 'nope'. Name one of its foreign keys",
        ),
        (
            lambda: counter(Reply, "post", "title"),
            r"relatedapp.Post.title is a CharField, not an integer field. Count into an "
            r"integer field, e.g. add comment_count = models.PositiveIntegerField\(default=0\) "
            r"to Post.",
        ),
        (
            lambda: counter(Reply, "post", "nope"),
            r"relatedapp.Post has no field 'nope'. Count into an integer field, e.g. add nope = ",
        ),
        (
            lambda: touch(Reply, "post", "title"),
            r"touch\(relatedapp.Reply, 'post', 'title'\) \(.*test_related.py:\d+\): "
            r"relatedapp.Post.title is a "
            r"CharField, not a DateTimeField or DateField. Touch a date/time field, e.g. add "
            r"updated_at = models.DateTimeField\(null=True\) to Post.",
        ),
        (
            lambda: counter(Reply, "post", "comment_count", where={"approved__in": [1]}),
            r"where= names 'approved__in', which is not a field of relatedapp.Reply. where= "
            r"takes exact field values",
        ),
        (
            lambda: counter(ReplyProxy, "post", "comment_count"),
            r"relatedapp.ReplyProxy is a proxy model.*Declare it on relatedapp.Reply",
        ),
        (
            lambda: counter(Vote, "topic", "vote_count", where={"id": 1}),
            r"relatedapp.Topic.vote_count is already kept by counter\(relatedapp.Vote, "
            r"'topic', 'vote_count'\) at .*models.py:\d+. Count each relation",
        ),
        (
            lambda: counter(object, "post", "comment_count"),  # type: ignore[arg-type]
            "is not a Django model",
        ),
    ],
)
def test_related_bad_input_fails_at_call_time(declare, message):
    before = registry.hooks()
    with pytest.raises((ImproperlyConfigured, TypeError), match=message):
        declare()
    assert registry.hooks() == before  # nothing registered, nothing replaced
    post = Post.objects.create()
    Reply.objects.create(post=post)
    assert counts(post) == (0, 0)


def test_related_duplicate_counter_names_the_first():
    counter(Reply, "post", "comment_count", where={"approved": True})
    with pytest.raises(
        ImproperlyConfigured, match=r"where=\{'approved': True\}\) at .*test_related.py"
    ):
        counter(Reply, "post", "comment_count")
    with pytest.raises(
        ImproperlyConfigured,
        match=r"counter\(relatedapp.Reply, 'quoted', 'comment_count'\) \(.*\): "
        r"relatedapp.Post.comment_count is already kept by counter\(relatedapp.Reply, 'post'",
    ):
        counter(Reply, "quoted", "comment_count")
    counter(Reply, "quoted", "quote_count")  # a field of its own is fine


def test_related_lazy_mistakes_are_system_checks_and_fail_the_first_save():
    # What counter() declares before the app registry is ready is checked later.
    Relation("relatedapp.Reply", "post", (Counter("title", (), "models.py:1"),)).register()
    with pytest.raises(SystemCheckError) as error:
        call_command("check")
    assert "signalhooks.E021" in str(error.value)
    assert "relatedapp.Post.title is a CharField, not an integer field" in str(error.value)
    with pytest.raises(ValueError, match="not an integer field"):
        Reply.objects.create(post=Post.objects.create())


def test_related_mistakes_declared_while_models_load_stop_start_up():
    finish_relations()  # the suite's own declarations work
    # A bad counter() in a models.py, checked by ready(), and a valid one on the same
    # foreign key declared later: each error names the wrong declaration, where it is.
    Relation("relatedapp.Reply", "post", (Counter("title", (), "blog/models.py:7"),)).register()
    wrong = (
        r"counter\(relatedapp.Reply, 'post', 'title'\) \(blog/models.py:7\): "
        r"relatedapp.Post.title is a CharField, not an integer field\."
    )
    with pytest.raises(
        ImproperlyConfigured,
        match=r"^signalhooks: these counter\(\), total\(\) and touch\(\) declarations "
        rf"cannot work:\n  {wrong}",
    ):
        finish_relations()
    with pytest.raises(ImproperlyConfigured, match=rf"^{wrong}") as error:
        counter(Reply, "post", "comment_count")
    assert "test_related.py" not in str(error.value)  # the valid declaration is not blamed


def test_related_system_check_messages_say_where_the_declaration_is():
    Relation("relatedapp.Reply", "post", (Counter("title", (), "blog/models.py:7"),)).register()
    [error] = [e for e in check_hooks() if e.id == "signalhooks.E021"]
    assert error.msg.startswith("counter(relatedapp.Reply, 'post', 'title') (blog/models.py:7): ")


def test_related_lazy_relation_on_a_field_that_is_no_foreign_key_is_a_system_check():
    Relation("relatedapp.Reply", "text", (Counter("comment_count", (), "models.py:1"),)).register()
    with pytest.raises(SystemCheckError, match="signalhooks.E020"):
        call_command("check")


def test_related_unknown_lazy_model_is_reported_and_skipped():
    # Declared while the models load (a models.py): reported by the check, not raised.
    Relation("relatedapp.Nope", "post", (Counter("comment_count", (), "models.py:1"),)).register()
    counter(Reply, "post", "comment_count")
    with pytest.raises(SystemCheckError, match="signalhooks.E001"):
        call_command("check")
    post = Post.objects.create()
    Reply.objects.create(post=post)
    Post.objects.filter(pk=post.pk).update(comment_count=0)
    assert recount(Post) == {"comment_count": {post.pk: (0, 1)}}
    out = StringIO()
    call_command("signalhooks", "recount", stdout=out)
    assert out.getvalue().startswith("relatedapp.Post: 0 counter value(s) fixed")


def test_related_valid_declarations_pass_the_checks(counters):
    touch(Tagging, "tag", "used_on")
    call_command("check")
