from __future__ import annotations

import copy
import pickle

import django
import django.utils.deprecation
import pytest
from asgiref.sync import async_to_sync
from django.core.files.base import ContentFile
from django.db.models import DEFERRED, Model, signals

from signalhooks import changes, post_save, pre_save, track
from signalhooks.registry import registry
from tests.testapp.models import (
    Article,
    Document,
    OldLoading,
    OwnLoading,
    Plain,
    PublishedArticle,
)

pytestmark = pytest.mark.django_db


def recorder():
    calls = []

    def hook(**kwargs):
        calls.append(dict(kwargs["changes"]))

    return calls, hook


# -- 1. refresh_from_db moves the baseline --------------------------------------------


def test_tracking_refresh_from_db_makes_refreshed_values_the_baseline():
    calls, hook = recorder()
    post_save(Article, changed="title")(hook)
    article = Article.objects.create(title="a")
    loaded = Article.objects.get()
    Article.objects.filter(pk=article.pk).update(title="b")
    loaded.refresh_from_db()
    assert loaded.title == "b"
    assert changes(loaded) == {}
    calls.clear()
    loaded.save()
    assert calls == []


def test_tracking_refresh_from_db_of_some_fields_keeps_the_others():
    track(Article, "title", "status")
    Article.objects.create(title="a", status="draft")
    article = Article.objects.get()
    Article.objects.update(title="b", status="live")
    article.status = "mine"
    article.refresh_from_db(fields=["title"])
    assert changes(article) == {"status": ("draft", "mine")}


def test_tracking_arefresh_from_db_makes_refreshed_values_the_baseline():
    track(Article, "title")
    Article.objects.create(title="a")
    article = Article.objects.get()
    Article.objects.update(title="b")

    async def refresh():
        await article.arefresh_from_db()

    async_to_sync(refresh)()
    assert (article.title, changes(article)) == ("b", {})


def test_tracking_refresh_of_a_constructed_instance_gives_it_a_baseline():
    track(Article, "title")
    pk = Article.objects.create(title="a").pk
    article = Article(pk=pk)
    article._state.adding = False
    article.refresh_from_db()
    assert changes(article) == {}


def test_tracking_cooperates_with_a_models_own_from_db_and_refresh():
    track(OwnLoading, "name")
    OwnLoading.objects.create(name="a")
    row = OwnLoading.objects.get()
    assert row.loaded_by_own_from_db
    row.name = "b"
    assert changes(row) == {"name": ("a", "b")}
    row.refresh_from_db()
    assert row.refreshed_by_own_method
    assert changes(row) == {}


@pytest.mark.parametrize("field", ["name", "data"])  # a plain value; a mutable one
def test_tracking_keeps_djangos_deprecation_of_an_old_from_db_signature(field):
    """Django 6.1 warns about a from_db() without fetch_mode, and calls it without."""
    track(OldLoading, field)
    OldLoading.objects.create(name="a", data={"n": 1})
    if django.VERSION >= (6, 1):
        warning = django.utils.deprecation.RemovedInDjango2028Warning
        message = r"OldLoading\.from_db\(\) must accept a fetch_mode keyword argument"
        with pytest.warns(warning, match=message):
            row = OldLoading.objects.get()
    else:
        row = OldLoading.objects.get()
    assert row.loaded_by_own_from_db
    row.name, row.data["n"] = "b", 2
    assert (
        changes(row)
        == {"name": {"name": ("a", "b")}, "data": {"data": ({"n": 1}, {"n": 2})}}[field]
    )


def test_tracking_wrappers_go_when_nothing_is_tracked():
    own_from_db = OwnLoading.__dict__["from_db"]
    with registry.isolated():
        track(OwnLoading, "name")
        track(Plain, "name")
        assert "from_db" in Plain.__dict__
        assert OwnLoading.__dict__["from_db"] is not own_from_db
    assert "from_db" not in Plain.__dict__
    assert "refresh_from_db" not in Plain.__dict__
    assert OwnLoading.__dict__["from_db"] is own_from_db
    assert Plain.from_db.__func__ is Model.from_db.__func__


# -- 2. deferred fields --------------------------------------------------------------


def test_tracking_reading_a_deferred_field_is_not_a_change(django_assert_num_queries):
    calls, hook = recorder()
    post_save(Article, changed="body")(hook)
    Article.objects.create(title="a", body="long")
    calls.clear()
    with django_assert_num_queries(1):
        article = Article.objects.defer("body").get()
    assert article.body == "long"  # one query to load it
    assert changes(article) == {}
    article.save()
    assert calls == []
    article.body = "new"
    assert changes(article) == {"body": ("long", "new")}


def test_tracking_reading_a_field_outside_only_is_not_a_change():
    track(Article, "title", "status")
    Article.objects.create(title="a", status="draft")
    article = Article.objects.only("title").get()
    assert article.status == "draft"
    assert changes(article) == {}
    article.status = "live"
    assert changes(article) == {"status": ("draft", "live")}


# -- 3. DEFERRED survives pickle and deepcopy ---------------------------------------------


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))])
def test_tracking_deferred_instance_survives_pickle_and_deepcopy(clone):
    calls, hook = recorder()
    post_save(Article, changed=["title", "body"])(hook)
    track(Article, "data")  # a mutable field: its copy must not clone the marker
    Article.objects.create(title="a", body="long", data={"k": [1]})
    article = clone(Article.objects.only("title", "data").get())
    assert changes(article) == {}
    calls.clear()
    article.save()
    assert calls == []
    article.body = "new"
    assert changes(article) == {"body": (DEFERRED, "new")}
    article.delete()
    assert not Article.objects.exists()


def test_tracking_unloaded_marker_is_one_object_everywhere():
    from signalhooks.tracking import UNLOADED

    assert pickle.loads(pickle.dumps(UNLOADED)) is UNLOADED
    assert copy.deepcopy(UNLOADED) is UNLOADED
    assert repr(UNLOADED) == "<not loaded>"


# -- 4. files --------------------------------------------------------------------------


def test_tracking_fieldfile_renamed_in_place_is_a_change_every_time():
    calls, hook = recorder()
    post_save(Document, changed="attachment")(hook)
    document = Document.objects.create()
    document = Document.objects.get()
    calls.clear()
    document.attachment.save("one.txt", ContentFile(b"1"), save=False)
    one = document.attachment.name
    assert changes(document) == {"attachment": ("", one)}
    document.save()
    document.attachment.save("two.txt", ContentFile(b"2"), save=False)
    two = document.attachment.name
    document.save()
    assert [c["attachment"] for c in calls] == [("", one), (one, two)]
    assert Document.objects.values_list("attachment", flat=True).get() == two
    document.save()
    assert len(calls) == 2


def test_tracking_reading_a_file_field_is_not_a_change():
    track(Document, "attachment")
    Document.objects.create(attachment=ContentFile(b"x", name="x.txt"))
    document = Document.objects.get()
    assert document.attachment.name.startswith("docs/x")
    assert changes(document) == {}


# -- 5. update_fields and pre_save -------------------------------------------------------


def test_tracking_pre_save_changed_hook_runs_only_for_written_fields():
    calls, hook = recorder()
    pre_save(Article, changed="title")(hook)
    article = Article.objects.create(title="a", body="b")
    calls.clear()
    article.title = "new title"
    article.body = "new body"
    article.save(update_fields=["body"])
    assert calls == []
    post_save(Article, changed=["title", "body"])(hook)
    article.save(update_fields=["title"])
    assert calls == [{"title": ("a", "new title")}, {"title": ("a", "new title")}]


def test_tracking_pre_save_hook_reading_fields_causes_no_extra_write(django_assert_num_queries):
    Document.objects.create(attachment=ContentFile(b"x", name="x.txt"), notes="n")

    @pre_save(Document)
    def peek(sender, instance, **kwargs):
        assert instance.attachment.name.startswith("docs/x")  # str -> FieldFile
        assert instance.notes == "n"  # a deferred load

    document = Document.objects.defer("notes").get()
    document.title = "t"
    with django_assert_num_queries(2):  # the deferred load, the UPDATE
        document.save(update_fields=["title"])
    assert Document.objects.get().title == "t"


def test_tracking_pre_save_hook_assigning_outside_update_fields_is_written():
    @pre_save(Document)
    def stamp(sender, instance, **kwargs):
        instance.notes = "stamped"

    Document.objects.create(title="a")
    document = Document.objects.defer("notes").get()
    document.title = "b"
    document.save(update_fields=["title"])
    assert Document.objects.values_list("title", "notes").get() == ("b", "stamped")


# -- 6. tracking grows after instances were loaded -----------------------------------------


def test_tracking_track_after_load_never_breaks_loaded_instances():
    track(Article, "title")
    Article.objects.create(title="a", status="draft")
    article = Article.objects.get()
    calls, hook = recorder()
    post_save(Article, changed="status")(hook)
    article.title = "b"
    assert changes(article) == {"title": ("a", "b"), "status": (DEFERRED, "draft")}
    article.save()
    assert calls == [{"title": ("a", "b"), "status": (DEFERRED, "draft")}]
    assert changes(article) == {}


def test_tracking_proxies_and_mti_children_load_with_a_baseline():
    track(Article, "title")
    Article.objects.create(title="a")
    article = PublishedArticle.objects.get()
    article.title = "b"
    assert changes(article) == {"title": ("a", "b")}


def test_tracking_nested_update_fields_save_in_a_pre_save_hook(django_assert_num_queries):
    Document.objects.create(title="a", notes="n")

    @pre_save(Document)
    def again(sender, instance, update_fields, **kwargs):
        assert instance.notes == "n"  # loaded inside the outer save's hooks
        instance.save(update_fields=["notes"])

    document = Document.objects.defer("notes").get()
    document.title = "b"
    with django_assert_num_queries(3):  # the deferred load, the inner and outer UPDATE
        document.save(update_fields=["title"])
    assert Document.objects.values_list("title", "notes").get() == ("b", "n")


def test_tracking_post_save_sent_by_hand_for_a_deferred_instance():
    calls, hook = recorder()
    post_save(Article, changed=["title", "body"])(hook)
    Article.objects.create(title="a", body="b")
    loaded = Article.objects.defer("body").get()
    calls.clear()
    loaded.title = "c"
    signals.post_save.send(sender=Article, instance=loaded, created=False)
    assert calls == [{"title": ("a", "c")}]
    assert changes(loaded) == {}
