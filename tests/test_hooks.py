from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import transaction
from django.db.models import signals

from signalhooks import changes, muted, post_delete, post_save, pre_delete, pre_save, track
from signalhooks.registry import registry
from tests.db_threads import close_thread_connections
from tests.testapp.models import Article, Author, Comment, Place, Plain, PublishedArticle, Tag

pytestmark = pytest.mark.django_db


def recorder():
    calls = []

    def hook(**kwargs):
        calls.append(kwargs)

    return calls, hook


# -- 1. any model, lazy senders, proxies, no receivers for unhooked models -----------


def test_hooks_third_party_model_by_class_and_by_string():
    seen = []

    @post_save(User, created=True)
    def by_class(sender, instance, **kwargs):
        seen.append(("class", instance.username))

    @post_save("auth.User", created=True)
    def by_string(sender, instance, **kwargs):
        seen.append(("string", instance.username))

    User.objects.create_user("ada")
    assert seen == [("class", "ada"), ("string", "ada")]


def test_hooks_of_a_model_run_for_its_proxy():
    seen = []

    @post_save(Article)
    def on_article(sender, instance, **kwargs):
        seen.append(("article", sender))

    @post_save(PublishedArticle)
    def on_proxy(sender, instance, **kwargs):
        seen.append(("proxy", sender))

    PublishedArticle.objects.create(title="p")
    Article.objects.create(title="a")
    assert seen == [
        ("article", PublishedArticle),
        ("proxy", PublishedArticle),
        ("article", Article),
    ]


def test_hooks_models_without_hooks_get_no_receivers(django_assert_num_queries):
    @post_save(Article)
    def hook(**kwargs):
        pass

    @pre_delete(Article)
    def hook2(**kwargs):
        pass

    for signal in (
        signals.pre_save,
        signals.post_save,
        signals.pre_delete,
        signals.post_delete,
    ):
        assert not signal.has_listeners(Plain)
    assert signals.post_save.has_listeners(Article)
    # Django's fast delete stays on for unhooked models: one DELETE, no SELECT.
    Plain.objects.bulk_create([Plain(name="x"), Plain(name="y")])
    with django_assert_num_queries(1):
        Plain.objects.all().delete()


def test_hooks_removed_hook_disconnects_receivers():
    with registry.isolated():

        @pre_delete(Comment)
        def hook(**kwargs):
            pass

        assert signals.pre_delete.has_listeners(Comment)
    assert not signals.pre_delete.has_listeners(Comment)


# -- 2. conditions, priority, kwargs ----------------------------------------------------


def test_hooks_created_condition():
    created_calls, on_created = recorder()
    updated_calls, on_updated = recorder()
    post_save(Article, created=True)(on_created)
    post_save(Article, created=False)(on_updated)
    article = Article.objects.create(title="a")
    article.save()
    article.save()
    assert len(created_calls) == 1
    assert len(updated_calls) == 2


def test_hooks_changed_condition_and_changes_kwarg():
    calls, hook = recorder()
    post_save(Article, changed=["title", "status"])(hook)
    article = Article.objects.create(title="a")
    assert calls[-1]["changes"] == {"title": (None, "a"), "status": (None, "draft")}
    article.body = "not tracked"
    article.save()
    assert len(calls) == 1
    article.status = "published"
    article.save()
    assert len(calls) == 2
    assert calls[-1]["changes"] == {"status": ("draft", "published")}


def test_hooks_changed_accepts_attname_and_reports_ids():
    calls, hook = recorder()
    post_save(Article, changed="author_id")(hook)
    ann, bob = Author.objects.create(name="ann"), Author.objects.create(name="bob")
    article = Article.objects.create(title="a", author=ann)
    article.author = bob
    article.save()
    assert calls[-1]["changes"] == {"author": (ann.pk, bob.pk)}


def test_hooks_when_predicate():
    calls, hook = recorder()
    post_save(Article, when=lambda a: a.status == "published")(hook)
    article = Article.objects.create(title="a")
    assert calls == []
    article.status = "published"
    article.save()
    assert len(calls) == 1


def test_hooks_receive_django_kwargs():
    calls, hook = recorder()
    post_save(Article)(hook)
    article = Article.objects.create(title="a")
    article.save(update_fields=["title"])
    first, second = calls
    assert first["sender"] is Article
    assert first["instance"] is article
    assert first["created"] is True
    assert first["raw"] is False
    assert first["using"] == "default"
    assert first["signal"] is signals.post_save
    assert first["update_fields"] is None
    assert second["update_fields"] == frozenset({"title"})


def test_hooks_raw_fixture_loading_skipped_by_default():
    skipped, default_hook = recorder()
    kept, raw_hook = recorder()
    pre_save(Article)(default_hook)
    post_save(Article, raw=True)(raw_hook)
    call_command("loaddata", "articles", verbosity=0)
    assert Article.objects.filter(pk=500).exists()
    assert skipped == []
    assert [c["raw"] for c in kept] == [True]


def test_hooks_priority_lower_first_ties_in_registration_order():
    order = []
    for name, priority in [("b", 5), ("a", -1), ("c", 5), ("d", 0)]:

        def hook(name=name, **kwargs):
            order.append(name)

        post_save(Article, priority=priority)(hook)
    Article.objects.create(title="x")
    assert order == ["a", "d", "b", "c"]


def test_hooks_pre_save_can_change_the_row():
    @pre_save(Article, changed="title")
    def reslug(sender, instance, changes, **kwargs):
        old, new = changes["title"]
        instance.slug = new.lower().replace(" ", "-")

    article = Article.objects.create(title="Hello World")
    assert Article.objects.get(pk=article.pk).slug == "hello-world"


def test_hooks_decorators_return_function_unchanged():
    def hook(**kwargs):
        return 42

    assert post_save(Article)(hook) is hook
    assert pre_delete(Article)(hook) is hook


# -- 3. change tracking -----------------------------------------------------------------


def test_tracking_only_needed_fields():
    post_save(Article, changed="title")(lambda **kw: None)
    track(Article, "status")
    tracker = registry.tracker(Article)
    assert tracker is not None
    assert tracker.names == ("title", "status")
    assert registry.tracker(Comment) is None


def test_tracking_baseline_resets_after_each_save_not_at_commit():
    calls, hook = recorder()
    post_save(Article, changed="title")(hook)
    article = Article.objects.create(title="a")
    calls.clear()
    with transaction.atomic():
        article.title = "b"
        article.save()
        article.save()
        article.save()
    assert len(calls) == 1


def test_tracking_in_place_json_mutation_counts():
    calls, hook = recorder()
    post_save(Article, changed="data")(hook)
    article = Article.objects.create(title="a", data={"tags": ["x"]})
    calls.clear()
    article.data["tags"].append("y")
    assert changes(article) == {"data": ({"tags": ["x"]}, {"tags": ["x", "y"]})}
    article.save()
    assert calls[-1]["changes"] == {"data": ({"tags": ["x"]}, {"tags": ["x", "y"]})}
    article.save()
    assert len(calls) == 1


def test_tracking_deferred_fields_cost_no_query(django_assert_num_queries):
    track(Article, "title", "body")
    Article.objects.create(title="a", body="long")
    with django_assert_num_queries(1):
        article = Article.objects.defer("body").get()
        assert changes(article) == {}


def test_tracking_assigning_deferred_field_counts_as_change():
    calls, hook = recorder()
    post_save(Article, changed="body")(hook)
    Article.objects.create(title="a", body="long")
    calls.clear()
    article = Article.objects.defer("body").get()
    article.save()
    assert calls == []
    article.body = "new"
    article.save()
    assert len(calls) == 1
    from django.db.models import DEFERRED

    assert calls[0]["changes"] == {"body": (DEFERRED, "new")}
    assert Article.objects.get().body == "new"


def test_tracking_changes_without_tracked_fields_is_an_error():
    article = Article.objects.create(title="a")
    with pytest.raises(ValueError, match=r"no field of testapp.Article is tracked.*track\(Article"):
        changes(article)


def test_tracking_password_is_redacted():
    calls, hook = recorder()
    post_save(User, changed="password")(hook)
    user = User.objects.create_user("ada", password="one")
    old_hash = user.password
    user.set_password("two")
    user.save()
    assert calls[-1]["changes"] == {"password": ("<redacted>", "<redacted>")}
    assert old_hash not in repr(calls) and user.password not in repr(calls)


# -- 4. on_commit -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_on_commit_runs_after_outermost_commit_of_own_alias():
    calls, hook = recorder()
    post_save(Article, on_commit=True)(hook)
    with transaction.atomic(using="default"):
        with transaction.atomic(using="other"):
            Article.objects.using("other").create(title="other db")
        # The "other" alias committed: its hook ran, default's is still open.
        assert [c["instance"].title for c in calls] == ["other db"]
        with transaction.atomic():
            Article.objects.create(title="default db")
        assert len(calls) == 1
    assert [c["instance"].title for c in calls] == ["other db", "default db"]
    assert calls[1]["using"] == "default"


@pytest.mark.django_db(transaction=True)
def test_on_commit_gets_changes_of_its_own_save():
    calls, hook = recorder()
    post_save(Article, changed="title", on_commit=True)(hook)
    article = Article.objects.create(title="a")
    calls.clear()
    with transaction.atomic():
        article.title = "b"
        article.save()
        article.title = "c"
        article.save()
    assert [c["changes"] for c in calls] == [{"title": ("a", "b")}, {"title": ("b", "c")}]


@pytest.mark.django_db(transaction=True)
def test_on_commit_never_after_rollback():
    calls, hook = recorder()
    post_save(Article, on_commit=True)(hook)
    with pytest.raises(RuntimeError), transaction.atomic():
        Article.objects.create(title="a")
        raise RuntimeError
    assert calls == []
    with transaction.atomic():
        Article.objects.create(title="kept")
        try:
            with transaction.atomic():
                Article.objects.create(title="rolled back")
                raise RuntimeError
        except RuntimeError:
            pass
    assert [c["instance"].title for c in calls] == ["kept"]


@pytest.mark.django_db(transaction=True)
def test_on_commit_failure_is_logged_and_others_run(caplog):
    ran = []

    @post_save(Article, on_commit=True)
    def broken(**kwargs):
        raise ValueError("boom")

    @post_save(Article, on_commit=True)
    def fine(**kwargs):
        ran.append(True)

    with caplog.at_level(logging.ERROR, logger="signalhooks"), transaction.atomic():
        Article.objects.create(title="a")
    assert ran == [True]
    [record] = [r for r in caplog.records if r.name == "signalhooks"]
    assert "broken" in record.getMessage() and "testapp.Article" in record.getMessage()
    assert record.exc_info[1].args == ("boom",)


def test_on_commit_outside_transaction_runs_immediately(django_capture_on_commit_callbacks):
    calls, hook = recorder()
    post_save(Article, on_commit=True)(hook)
    with django_capture_on_commit_callbacks(execute=True):
        Article.objects.create(title="a")
    assert len(calls) == 1


# -- 5. cascades, async -----------------------------------------------------------------


def test_cascade_delete_runs_hooks_of_every_row():
    pre, pre_hook = recorder()
    post, post_hook = recorder()
    pre_delete(Comment)(pre_hook)
    post_delete(Comment)(post_hook)
    article = Article.objects.create(title="a")
    Comment.objects.bulk_create([Comment(article=article, text=str(i)) for i in range(3)])
    article.delete()
    assert sorted(c["instance"].text for c in pre) == ["0", "1", "2"]
    assert sorted(c["instance"].text for c in post) == ["0", "1", "2"]
    assert all(c["origin"] == article for c in post)


def test_async_save_and_delete_run_hooks_and_async_hooks_run():
    seen = []

    @post_save(Article)
    async def async_hook(sender, instance, **kwargs):
        await asyncio.sleep(0)
        seen.append(("saved", instance.title))

    @post_delete(Article)
    def sync_hook(sender, instance, **kwargs):
        seen.append(("deleted", instance.title))

    async def main():
        article = Article(title="async")
        await article.asave()
        await article.adelete()

    async_to_sync(main)()
    assert seen == [("saved", "async"), ("deleted", "async")]


# -- 6. update_fields -------------------------------------------------------------------


def test_update_fields_assignment_by_pre_save_hook_is_persisted():
    calls, hook = recorder()

    @pre_save(Article, changed="title")
    def reslug(sender, instance, **kwargs):
        instance.slug = instance.title.lower()

    post_save(Article, changed=["title", "slug"])(hook)
    article = Article.objects.create(title="A")
    article.title = "B"
    article.save(update_fields=["title"])
    assert Article.objects.get(pk=article.pk).slug == "b"
    assert calls[-1]["changes"] == {"title": ("A", "B"), "slug": ("a", "b")}


def test_update_fields_without_extra_assignment_issues_one_query(django_assert_num_queries):
    @pre_save(Article)
    def noop(**kwargs):
        pass

    article = Article.objects.create(title="A")
    article.title = "B"
    with django_assert_num_queries(1):
        article.save(update_fields=["title"])


# -- 7. recursion -----------------------------------------------------------------------


def test_hook_saving_its_own_instance_does_not_recurse():
    calls = []

    @post_save(Article)
    def stamp(sender, instance, **kwargs):
        calls.append(instance.pk)
        instance.body = "stamped"
        instance.save()

    article = Article.objects.create(title="a")
    assert calls == [article.pk]
    assert Article.objects.get().body == "stamped"


def test_pre_save_hook_saving_its_own_instance_does_not_recurse():
    article = Article.objects.create(title="a")
    calls = []

    @pre_save(Article)
    def again(sender, instance, **kwargs):
        calls.append(True)
        instance.slug = "s"
        instance.save()

    article.save()
    assert calls == [True]
    assert Article.objects.get().slug == "s"


@pytest.mark.django_db(transaction=True)
def test_on_commit_hook_saving_its_own_instance_does_not_recurse():
    calls = []

    @post_save(Article, on_commit=True)
    def stamp(sender, instance, **kwargs):
        calls.append(True)
        instance.save()

    with transaction.atomic():
        Article.objects.create(title="a")
    assert calls == [True]


# -- 8. muted ---------------------------------------------------------------------------


def test_muted_context_manager_and_targets():
    calls, hook = recorder()
    other_calls, other = recorder()
    post_save(Article)(hook)
    post_save(Tag)(other)
    with muted():
        Article.objects.create(title="a")
        Tag.objects.create(name="t")
    assert calls == other_calls == []
    with muted(Article):
        Article.objects.create(title="b")
        Tag.objects.create(name="t")
    assert calls == [] and len(other_calls) == 1
    with muted(hook), muted("testapp.Tag"):
        Article.objects.create(title="c")
        Tag.objects.create(name="t")
    assert calls == [] and len(other_calls) == 1
    with muted(Tag), muted():
        Article.objects.create(title="d")
    Article.objects.create(title="e")
    assert [c["instance"].title for c in calls] == ["e"]


def test_muted_as_decorator_sync_and_async():
    calls, hook = recorder()
    post_save(Article)(hook)

    @muted(Article)
    def quiet(title):
        return Article.objects.create(title=title)

    @muted()
    async def quiet_async(title):
        return await Article.objects.acreate(title=title)

    quiet("a")
    async_to_sync(quiet_async)("b")
    assert calls == []
    Article.objects.create(title="loud")
    assert len(calls) == 1


def test_muted_rejects_bad_targets():
    with pytest.raises(TypeError, match="pass models"), muted(42):
        pass


@pytest.mark.django_db(transaction=True)
def test_muted_is_thread_local():
    calls, hook = recorder()
    post_save(Plain)(hook)
    inside, go = threading.Event(), threading.Event()

    def other_thread():
        inside.wait(5)
        try:
            Plain.objects.create(name="thread")
        finally:
            close_thread_connections()
            go.set()

    with muted():
        thread = threading.Thread(target=other_thread)
        thread.start()
        inside.set()
        go.wait(5)
        thread.join()
    # The muted block in the main thread did not silence the other thread.
    assert [c["instance"].name for c in calls] == ["thread"]


def test_muted_is_task_local():
    calls, hook = recorder()
    post_save(Plain)(hook)

    async def quiet(started, release):
        with muted():
            started.set()
            await release.wait()
            await Plain.objects.acreate(name="quiet")

    async def loud(started, release):
        await started.wait()
        # The other task is inside muted() right now; this one is not.
        await Plain.objects.acreate(name="loud")
        release.set()

    async def main():
        started, release = asyncio.Event(), asyncio.Event()
        await asyncio.gather(quiet(started, release), loud(started, release))

    async_to_sync(main)()
    assert [c["instance"].name for c in calls] == ["loud"]
    assert Plain.objects.count() == 2


# -- 9. bad input -----------------------------------------------------------------------


def test_bad_input_unknown_changed_field():
    with pytest.raises(ValueError, match=r"testapp.Article has no field 'titel'.*Use one of"):
        post_save(Article, changed="titel")


def test_bad_input_on_commit_on_pre_hooks():
    with pytest.raises(TypeError, match=r"Use @post_save\(\.\.\., on_commit=True\)"):
        pre_save(Article, on_commit=True)
    with pytest.raises(TypeError, match=r"Use @post_delete\(\.\.\., on_commit=True\)"):
        pre_delete(Article, on_commit=True)


def test_bad_input_created_or_changed_on_delete_hook():
    with pytest.raises(TypeError, match="delete hooks take no created="):
        post_delete(Article, created=True)
    with pytest.raises(TypeError, match="delete hooks take no changed="):
        pre_delete(Article, changed="title")


def test_bad_input_senders():
    from tests.testapp.models import models

    with pytest.raises(TypeError, match="is not a Django model"):
        post_save(object)

    def notify(sender, instance, **kwargs): ...

    # A bare @post_save (no parentheses) passes the function as the sender.
    for decorator in (pre_save, post_save, pre_delete, post_delete):
        name = decorator.__name__
        with pytest.raises(
            TypeError,
            match=rf"^@{name} needs its sender: write @{name}\(MyModel\) or "
            rf'@{name}\("app_label.MyModel"\) above .*notify, not a bare @{name}\.$',
        ):
            decorator(notify)
    with pytest.raises(TypeError, match="needs at least one model"):
        post_save()
    with pytest.raises(TypeError, match='"app_label.ModelName"'):
        post_save("Article")
    with pytest.raises(TypeError, match="abstract"):

        class Base(models.Model):
            class Meta:
                app_label = "testapp"
                abstract = True

        post_save(Base)
    with pytest.raises(TypeError, match="created=1"):
        post_save(Article, created=1)
    with pytest.raises(TypeError, match="decorates a function"):
        post_save(Article)(42)


def test_bad_input_track():
    with pytest.raises(TypeError, match="name the fields to track"):
        track(Article)
    with pytest.raises(ValueError, match="has no field 'nope'"):
        track(Article, "nope")


def test_bad_input_lazy_sender_field_checked_on_resolution():
    with pytest.raises(ImproperlyConfigured, match=r"testapp.Article has no field 'nope'"):
        post_save("testapp.Article", changed="nope")(lambda **kw: None)
    with pytest.raises(ImproperlyConfigured, match=r"has no field 'nope'"):
        track("testapp.Article", "nope")


def test_update_fields_extra_assignment_on_untracked_model_is_persisted():
    @pre_save(Comment)
    def shout(sender, instance, **kwargs):
        instance.text = instance.text.upper()

    first, second = Article.objects.create(title="1"), Article.objects.create(title="2")
    comment = Comment.objects.create(article=first, text="hi")
    comment.text = "moved"
    comment.article = second
    comment.save(update_fields=["article"])
    saved = Comment.objects.get()
    assert (saved.article_id, saved.text) == (second.pk, "MOVED")


# -- 10. multi-table inheritance ----------------------------------------------------------


def test_mti_parent_hooks_and_tracking_run_for_child_saves_with_child_sender():
    from tests.testapp.models import Place, Restaurant

    seen = []

    @post_save(Place, changed="name")
    def on_place(sender, instance, changes, **kwargs):
        seen.append((sender, type(instance), dict(changes)))

    track(Place, "city")
    Restaurant.objects.create(name="a", serves="pizza")
    restaurant = Restaurant.objects.get()
    restaurant.name = "b"
    restaurant.city = "Rome"
    assert changes(restaurant) == {"name": ("a", "b"), "city": ("", "Rome")}
    restaurant.save()
    Place.objects.create(name="p")
    assert seen == [
        (Restaurant, Restaurant, {"name": (None, "a"), "city": (None, "")}),
        (Restaurant, Restaurant, {"name": ("a", "b"), "city": ("", "Rome")}),
        (Place, Place, {"name": (None, "p"), "city": (None, "")}),
    ]


def test_mti_parent_delete_hooks_run_once_per_deleted_row():
    from tests.testapp.models import Place, Restaurant

    deleted = []
    post_delete(Place)(lambda sender, instance, **kw: deleted.append((sender, instance.pk)))
    restaurant = Restaurant.objects.create(name="a")
    pk = restaurant.pk
    restaurant.delete()
    assert deleted == [(Place, pk)]
    kept = Restaurant.objects.create(name="kept")
    kept_pk = kept.pk
    kept.delete(keep_parents=True)  # the parent row stays: nothing to run
    assert deleted == [(Place, pk)]
    assert Place.objects.filter(pk=kept_pk).exists()


# -- 11. transitions and created= on pre_save ----------------------------------------------


def test_transition_keywords_narrow_a_changed_hook():
    runs = []
    post_save(Article, changed="status", was="draft", is_now="live")(
        lambda instance, **kw: runs.append(("was/is_now", instance.status))
    )
    pre_save(Article, changed="status", changes_to="archived")(
        lambda instance, **kw: runs.append(("changes_to", instance.status))
    )
    post_save(Article, changed="status", was_not="draft", is_not="archived")(
        lambda instance, **kw: runs.append(("not", instance.status))
    )
    article = Article.objects.create(title="a")  # status draft: created, old None
    runs.clear()
    for status in ("live", "archived", "archived", "draft", "live"):
        article.status = status
        article.save()
    assert runs == [
        ("was/is_now", "live"),
        ("changes_to", "archived"),
        ("not", "draft"),
        ("was/is_now", "live"),
    ]


def test_transition_bad_input_is_refused_at_decoration():
    with pytest.raises(TypeError, match=r"changed= takes field names, not a dict.*was='draft'"):
        post_save(Article, changed={"status": "live"})
    with pytest.raises(TypeError, match=r"a transition is the change of one field"):
        post_save(Article, is_now="live")
    with pytest.raises(
        TypeError,
        match=r"\(\.\.\., changed=\['status', 'title'\], was='draft'\): a transition is "
        r"the change of exactly one field, but changed= names 2\. Keep the one field",
    ):
        pre_save(Article, changed=["status", "title"], was="draft")
    with pytest.raises(TypeError, match=r"changes_to=X already means was_not=X and is_now=X"):
        post_save(Article, changed="status", changes_to="live", is_now="draft")
    with pytest.raises(TypeError, match=r"created=1"):
        pre_save(Article, created=1)


def test_transition_shown_by_the_command(capsys):
    post_save(Article, changed="status", changes_to="live")(lambda **kw: None)
    call_command("signalhooks", "--json")
    import json

    listed = json.loads(capsys.readouterr().out)["testapp.Article"]
    assert {"changed": ["status"], "is_now": "live", "was_not": "live"} in [
        h["conditions"] for h in listed
    ]


def test_pre_save_created_condition():
    runs = []
    pre_save(Article, created=True)(lambda instance, **kw: runs.append(("create", instance.pk)))
    pre_save(Article, created=False)(lambda instance, **kw: runs.append(("update", instance.pk)))
    article = Article.objects.create(title="a")
    article.save()
    assert runs == [("create", None), ("update", article.pk)]


@pytest.mark.django_db(transaction=True)
def test_mti_parent_cache_rules_and_counters_follow_child_saves_and_deletes():
    from django.core.cache import caches

    from signalhooks import counter, invalidate
    from tests.testapp.models import Restaurant, Town

    cache = caches["default"]
    invalidate(Place, keys=["place:{pk}", "place:name:{name}"])
    counter(Place, "town", "place_count")
    town = Town.objects.create()
    restaurant = Restaurant.objects.create(name="a", town=town)
    assert Town.objects.get().place_count == 1
    cache.set_many({f"place:{restaurant.pk}": 1, "place:name:a": 1, "place:name:b": 1})
    restaurant.name = "b"
    restaurant.save()
    assert cache.get_many([f"place:{restaurant.pk}", "place:name:a", "place:name:b"]) == {}
    cache.set_many({f"place:{restaurant.pk}": 1, "place:name:b": 1})
    pk = restaurant.pk
    restaurant.delete()
    assert cache.get_many([f"place:{pk}", "place:name:b"]) == {}
    assert Town.objects.get().place_count == 0


# -- 12. composite primary keys --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_composite_primary_key_hooks_changes_rules_and_bulk_paths(capsys):
    from django.core.cache import caches

    from signalhooks import invalidate
    from tests.testapp.models import Seat

    cache = caches["default"]
    seen = []
    post_save(Seat, changed="holder")(lambda instance, changes, **kw: seen.append(dict(changes)))
    invalidate(Seat, keys=["seat:{pk}", "seat:{row}:{number}"])
    Seat.objects.create(row="A", number=1, holder="x")
    seat = Seat.objects.get()
    seat.holder = "y"
    assert changes(seat) == {"holder": ("x", "y")}
    keys = ["seat:('A', 1)", "seat:A:1"]  # {pk} is the key's tuple, never None
    for write in (
        seat.save,
        lambda: Seat.objects.filter(row="A").update(holder="z"),
        lambda: Seat.objects.get().delete(),
        lambda: Seat.objects.create(row="A", number=1),
        lambda: Seat.objects.filter(row="A").delete(),
    ):
        cache.set_many(dict.fromkeys(keys, 1))
        with transaction.atomic():  # rules run after commit, when a delete has reset pk
            write()
        assert cache.get_many(keys) == {}
    assert seen[1] == {"holder": ("x", "y")}
    call_command("signalhooks")
    assert "testapp.Seat" in capsys.readouterr().out
