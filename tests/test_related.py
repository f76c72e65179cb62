from __future__ import annotations

import threading
from io import StringIO

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from signalhooks import counter, invalidate, recount, touch
from tests.cacheapp.models import Entry
from tests.relatedapp.models import Post, Reply, Topic, Vote

pytestmark = pytest.mark.django_db


@pytest.fixture
def counters():
    counter(Reply, "post", "comment_count")
    counter(Reply, "post", "approved_count", where={"approved": True})
    touch(Reply, "post", "updated_at")


def counts(post):
    post.refresh_from_db()
    return post.comment_count, post.approved_count


def test_counter_create_delete_and_cascade(counters):
    post = Post.objects.create()
    replies = [Reply.objects.create(post=post, approved=i % 2 == 0) for i in range(3)]
    assert counts(post) == (3, 2)
    replies[0].delete()
    assert counts(post) == (2, 1)
    post.delete()  # cascade: the replies' delete hooks run (and touch nothing left)
    assert not Reply.objects.exists()


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
    orphan = Reply.objects.create(post=None)
    orphan.delete()
    assert counts(first) == (1, 1)


def test_counter_condition_transitions(counters):
    post = Post.objects.create()
    reply = Reply.objects.create(post=post, approved=False)
    assert counts(post) == (1, 0)
    reply.approved = True
    reply.save()
    assert counts(post) == (1, 1)
    reply.approved = False
    reply.save()
    assert counts(post) == (1, 0)


def test_counter_uses_f_expressions_not_read_modify_write(counters):
    post = Post.objects.create()
    with CaptureQueriesContext(connection) as queries:
        Reply.objects.create(post=post, approved=True)
    sqls = [q["sql"] for q in queries]
    assert len(sqls) == 2  # INSERT the reply, one UPDATE of the post
    assert sqls[1].startswith("UPDATE")
    assert '"comment_count" + 1' in sqls[1] or "comment_count + 1" in sqls[1].replace('"', "")
    assert "updated_at" in sqls[1]


def test_counter_unrelated_save_costs_nothing():
    counter(Reply, "post", "comment_count")
    post = Post.objects.create()
    reply = Reply.objects.create(post=post)
    with CaptureQueriesContext(connection) as queries:
        reply.text = "edited"
        reply.save()
    assert len(queries) == 1


def test_touch_on_create_change_delete(counters):
    post = Post.objects.create()
    assert post.updated_at is None
    reply = Reply.objects.create(post=post)
    post.refresh_from_db()
    first = post.updated_at
    assert first is not None
    reply.text = "changed"
    reply.save()
    post.refresh_from_db()
    second = post.updated_at
    assert second >= first
    reply.delete()
    post.refresh_from_db()
    assert post.updated_at >= second


def test_cached_parent_in_memory_reloads_fresh_values(counters):
    post = Post.objects.create()
    reply = Reply(post=post)
    reply.save()
    # reply.post is the same object: its stale count was dropped, so it reloads.
    assert reply.post.comment_count == 1
    reply.post.title = "renamed"
    reply.post.save()
    assert counts(post) == (1, 0)


@pytest.mark.django_db(transaction=True)
def test_counter_runs_the_parents_cache_rules(counters):
    invalidate(Post, keys=["post:{pk}"])
    post = Post.objects.create()
    caches["default"].set(f"post:{post.pk}", "stale")
    with transaction.atomic():
        Reply.objects.create(post=post)
    assert caches["default"].get(f"post:{post.pk}") is None
    Entry.objects.create(title="x", slug="x")  # other models untouched


def test_bulk_create_queries_grow_with_parents_not_children(counters):
    posts = [Post.objects.create() for _ in range(10)]
    replies = [Reply(post=posts[i % 10], approved=i % 2 == 0) for i in range(1000)]
    with CaptureQueriesContext(connection) as queries:
        Reply.objects.bulk_create(replies)
    updates = [q for q in queries if q["sql"].startswith("UPDATE")]
    assert len(updates) <= 10
    assert [counts(p) for p in posts] == [(100, 100), (100, 0)] * 5


def test_queryset_update_and_delete_keep_counts(counters):
    first, second = Post.objects.create(), Post.objects.create()
    Reply.objects.bulk_create([Reply(post=first, approved=True) for _ in range(4)])
    Reply.objects.filter(pk__in=Reply.objects.values("pk")[:3]).update(post=second)
    assert counts(first) == (1, 1) and counts(second) == (3, 3)
    Reply.objects.filter(post=second).update(approved=False)
    assert counts(second) == (3, 0)
    replies = list(Reply.objects.filter(post=second))
    for reply in replies:
        reply.approved = True
    Reply.objects.bulk_update(replies, ["approved"])
    assert counts(second) == (3, 3)
    Reply.objects.filter(post=second).delete()
    assert counts(second) == (0, 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not settings.IS_POSTGRES, reason="SQLite serialises writers; the race needs PostgreSQL"
)
def test_counter_concurrent_creates_and_deletes_lose_nothing():
    counter(Reply, "post", "comment_count")
    post = Post.objects.create()
    barrier = threading.Barrier(4)

    def work(action):
        try:
            barrier.wait(10)
            action()
        finally:
            connection.close()

    def create():
        for _ in range(50):
            Reply.objects.create(post=post)

    def delete(ids):
        def run():
            for reply in Reply.objects.filter(pk__in=ids):
                reply.delete()

        return run

    threads = [threading.Thread(target=work, args=(create,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    post.refresh_from_db()
    assert post.comment_count == 200
    ids = list(Reply.objects.values_list("pk", flat=True))
    threads = [threading.Thread(target=work, args=(delete(ids[i::4]),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    post.refresh_from_db()
    assert post.comment_count == 0


def test_recount_repairs_and_reports(counters):
    post, empty = Post.objects.create(), Post.objects.create()
    Reply.objects.create(post=post, approved=True)
    Reply.objects.create(post=post)
    Post.objects.filter(pk=post.pk).update(comment_count=9, approved_count=0)
    Post.objects.filter(pk=empty.pk).update(comment_count=4)
    with CaptureQueriesContext(connection) as queries:
        fixed = recount(Post)
    assert len(queries) == 4
    assert fixed == {
        "comment_count": {post.pk: (9, 2), empty.pk: (4, 0)},
        "approved_count": {post.pk: (0, 1)},
    }
    assert counts(post) == (2, 1) and counts(empty) == (0, 0)
    assert recount("relatedapp.Post") == {"comment_count": {}, "approved_count": {}}
    assert recount(Entry) == {}


def test_recount_command(counters):
    post = Post.objects.create()
    Reply.objects.create(post=post)
    Post.objects.filter(pk=post.pk).update(comment_count=5)
    out = StringIO()
    call_command("signalhooks", "recount", stdout=out)
    assert out.getvalue().splitlines() == [
        "relatedapp.Post: 1 counter value(s) fixed",
        f"  pk={post.pk} comment_count: 5 -> 1",
        "relatedapp.Topic: 0 counter value(s) fixed",
    ]
    out = StringIO()
    call_command("signalhooks", "recount", "relatedapp.Post", stdout=out)
    assert out.getvalue() == "relatedapp.Post: 0 counter value(s) fixed\n"
    with pytest.raises(CommandError, match="app_label.Model"):
        call_command("signalhooks", "recount", "nope.Nope")


def test_related_listed(counters):
    out = StringIO()
    call_command("signalhooks", stdout=out)
    line = next(line for line in out.getvalue().splitlines() if "related(post:" in line)
    assert "counter comment_count, approved_count where {'approved': True}" in line
    assert "touch updated_at" in line and "counter " in line


def test_related_bad_input():
    with pytest.raises(ValueError, match=r"relatedapp.Reply has no foreign key 'text'.*post"):
        counter(Reply, "text", "comment_count")
    with pytest.raises(ValueError, match=r"relatedapp.Post.title must be an integer field"):
        counter(Reply, "post", "title")
    with pytest.raises(ValueError, match=r"has no field 'nope'"):
        counter(Reply, "post", "comment_count", where={"nope": 1})
    with pytest.raises(ValueError, match=r"Post.title must be a DateTimeField or DateField"):
        touch(Reply, "post", "title")
    with pytest.raises(TypeError, match="is not a Django model"):
        counter(object, "post", "comment_count")


def test_related_bad_lazy_input_is_a_system_check():
    from signalhooks.related import Counter, Relation

    # What counter() declared before the app registry is ready cannot check at once.
    relation = Relation("relatedapp.Reply", "post")
    relation.counters.append(Counter("title", {}, "x.py:1"))
    [error] = relation.check(Reply)
    assert error.id == "signalhooks.E020"
    assert "Post.title must be an integer field" in error.msg
    assert Relation("relatedapp.Reply", "post").check(Reply) == []


def test_counter_declared_in_models_module():
    topic = Topic.objects.create()
    votes = Vote.objects.bulk_create([Vote(topic=topic) for _ in range(3)])
    votes[0].delete()
    topic.refresh_from_db()
    assert topic.vote_count == 2
    with CaptureQueriesContext(connection) as queries:
        Vote.objects.filter(topic=topic).update(topic=topic)  # nothing counted moves
    assert [q for q in queries if q["sql"].startswith("UPDATE")] == [queries[-1]]
