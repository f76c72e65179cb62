from __future__ import annotations

import functools

import pytest
from django.db.models import signals

from signalhooks.hooktypes import BulkChange, Event, Hook
from signalhooks.registry import Registry, registry
from tests.testapp.models import Article, Author, Plain, PublishedArticle, Tag

pytestmark = pytest.mark.django_db


def noop(**kwargs):
    pass


def test_registry_registration_before_ready_resolves_at_setup():
    calls = []
    fresh = Registry(name="test-registry")
    with fresh.isolated():
        _register_and_save(fresh, calls)
    assert not signals.post_save.has_listeners(Plain)


def _register_and_save(fresh, calls):
    fresh.add(Hook(func=lambda **kw: calls.append("class"), event=Event.POST_SAVE, sender=Plain))
    fresh.add(
        Hook(
            func=lambda **kw: calls.append("lazy"),
            event=Event.POST_SAVE,
            sender="testapp.Plain",
            changed=frozenset({"name"}),
        )
    )
    fresh.track(Plain, ["name"])
    fresh.track("testapp.Plain", ["name"])
    fresh.track("testapp.Missing", ["name"])
    fresh.add(Hook(func=noop, event=Event.POST_SAVE, sender="not-a-label"))
    assert not signals.post_save.has_listeners(Plain)
    fresh.setup()
    Plain.objects.create(name="x")
    assert calls == ["class", "lazy"]
    assert fresh.unresolved == [
        ("not-a-label", "tests.test_registry.noop"),
        ("testapp.Missing", "track('testapp.Missing', ...)"),
    ]


def test_registry_hook_labels_and_sources():
    hook = Hook(func=noop, event=Event.POST_SAVE, sender=Article)
    assert hook.label == "tests.test_registry.noop"
    assert hook.source.endswith(f"tests/test_registry.py:{noop.__code__.co_firstlineno}")
    partial = Hook(func=functools.partial(noop), event=Event.POST_SAVE, sender=Article)
    assert partial.label.startswith("functools.partial(")
    assert partial.source == ""
    given = Hook(func=noop, event=Event.POST_SAVE, sender=Article, label="rule", source="x.py:1")
    assert (given.label, given.source) == ("rule", "x.py:1")


def test_registry_bulk_handlers_in_order():
    changes = []
    registry.add(Hook(func=noop, event=Event.POST_SAVE, sender=Article))
    registry.add(
        Hook(
            func=noop,
            event=Event.POST_SAVE,
            sender=Article,
            priority=5,
            bulk=lambda c: changes.append(("late", c)),
            bulk_fields=frozenset({"title"}),
        )
    )
    registry.add(
        Hook(
            func=noop,
            event=Event.POST_DELETE,
            sender=Article,
            priority=1,
            bulk=lambda c: changes.append(("early", c)),
            bulk_fields=frozenset({"slug"}),
        )
    )
    assert registry.bulk_fields(Article) == {"title", "slug"}
    assert registry.bulk_fields(Tag) == frozenset()
    assert registry.bulk_hooks(Tag) == ()
    registry.run_bulk(Article, "default", "update", [])
    assert changes == []
    rows = [({"pk": 1, "title": "a"}, {"pk": 1, "title": "b"})]
    registry.run_bulk(Article, "default", "update", rows)
    assert [name for name, _ in changes] == ["early", "late"]
    assert changes[0][1] == BulkChange(model=Article, using="default", action="update", rows=rows)


def test_registry_m2m_hooks_run_for_both_directions_once():
    calls = []
    registry.add(
        Hook(
            func=lambda **kw: calls.append((kw["action"], kw["model"])),
            event=Event.M2M_CHANGED,
            sender=Article,
        )
    )
    article = Article.objects.create(title="a")
    tag = Tag.objects.create(name="t")
    article.tags.add(tag)
    tag.articles.remove(article)
    assert calls == [
        ("pre_add", Tag),
        ("post_add", Tag),
        ("pre_remove", Article),
        ("post_remove", Article),
    ]


def test_registry_m2m_self_relation_runs_hook_once():
    calls = []
    registry.add(
        Hook(func=lambda **kw: calls.append(kw["action"]), event=Event.M2M_CHANGED, sender=Tag)
    )
    a, b = Tag.objects.create(name="a"), Tag.objects.create(name="b")
    a.related.add(b)
    assert calls == ["pre_add", "post_add"]


def test_registry_m2m_receivers_go_with_the_hooks():
    through = Article.tags.through
    with registry.isolated():
        registry.add(Hook(func=noop, event=Event.M2M_CHANGED, sender=Article))
        assert signals.m2m_changed.has_listeners(through)
    assert not signals.m2m_changed.has_listeners(through)


def test_registry_proxy_plans_share_the_tracker():
    registry.add(
        Hook(func=noop, event=Event.POST_SAVE, sender=Article, changed=frozenset({"title"}))
    )
    assert registry.tracker(PublishedArticle) is registry.tracker(Article) is not None
    assert registry.tracker(Author) is None


def test_registry_hook_on_instance_loaded_before_tracking_began():
    article = Article.objects.create(title="a")
    calls = []
    registry.add(
        Hook(
            func=lambda **kw: calls.append(dict(kw["changes"])),
            event=Event.POST_SAVE,
            sender=Article,
            changed=frozenset({"title"}),
        )
    )
    from django.db.models import DEFERRED

    article.title = "b"
    article.save()
    assert calls == [{"title": (DEFERRED, "b")}]


def test_registry_remove_before_ready():
    fresh = Registry(name="test-registry")
    hook = fresh.add(Hook(func=noop, event=Event.POST_SAVE, sender=Plain))
    fresh.remove(hook)
    assert fresh.hooks() == []


def test_registry_remove_unresolved_hook_after_ready():
    hook = registry.add(Hook(func=noop, event=Event.POST_SAVE, sender="testapp.Missing"))
    assert ("testapp.Missing", "tests.test_registry.noop") in registry.unresolved
    registry.remove(hook)
    assert ("testapp.Missing", "tests.test_registry.noop") not in registry.unresolved


def test_registry_save_signals_sent_by_other_code_pass_their_extra_arguments():
    seen = []
    plain = Plain.objects.create(name="x")
    for event in (Event.PRE_SAVE, Event.POST_SAVE):
        registry.add(
            Hook(
                func=lambda **kw: seen.append((kw["signal"], kw["custom"])),
                event=event,
                sender=Plain,
            )
        )
    signals.pre_save.send(sender=Plain, instance=plain, custom=1)
    signals.post_save.send(sender=Plain, instance=plain, created=False, custom=2)
    assert seen == [(signals.pre_save, 1), (signals.post_save, 2)]
