from __future__ import annotations

import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import transaction
from django.db.models import signals

import signalhooks
from signalhooks import invalidate, m2m_changed, muted
from signalhooks.registry import registry
from tests.testapp.models import Article, Author, Comment, Tag

pytestmark = pytest.mark.django_db


def recorder():
    calls = []

    def hook(**kwargs):
        calls.append(kwargs)

    return calls, hook


def summary(calls):
    return [
        (c["action"], c["instance"], c["reverse"], c["model"], c["pk_set"], c["using"])
        for c in calls
    ]


# -- 1. which changes run a hook --------------------------------------------------------


def test_m2m_changed_is_public():
    assert signalhooks.m2m_changed is m2m_changed
    assert "m2m_changed" in signalhooks.__all__


@pytest.mark.parametrize("field", [Article.tags, Tag.articles, "testapp.Article.tags"])
def test_m2m_changed_runs_for_both_sides_with_djangos_arguments(field):
    calls, hook = recorder()
    m2m_changed(field)(hook)
    article = Article.objects.create(title="a")
    tag, other = Tag.objects.create(name="t"), Tag.objects.create(name="u")
    article.tags.add(tag)
    other.articles.add(article)
    article.tags.remove(tag)
    other.articles.clear()
    assert summary(calls) == [
        ("post_add", article, False, Tag, {tag.pk}, "default"),
        ("post_add", other, True, Article, {article.pk}, "default"),
        ("post_remove", article, False, Tag, {tag.pk}, "default"),
        ("post_clear", other, True, Article, None, "default"),
    ]
    assert {c["sender"] for c in calls} == {Article.tags.through}
    assert all(c["signal"] is signals.m2m_changed for c in calls)


def test_m2m_changed_actions_narrow_the_hook():
    calls, hook = recorder()
    m2m_changed(Tag.articles, action="pre_clear")(hook)
    every, hook_every = recorder()
    m2m_changed(Article.tags, action=["pre_add", "post_add", "pre_remove", "post_remove"])(
        hook_every
    )
    article = Article.objects.create(title="a")
    tag = Tag.objects.create(name="t")
    article.tags.add(tag)
    article.tags.remove(tag)
    article.tags.add(tag)
    tag.articles.clear()
    assert [c["action"] for c in calls] == ["pre_clear"]
    assert calls[0]["pk_set"] is None and calls[0]["instance"] == tag
    assert [c["action"] for c in every] == [
        "pre_add",
        "post_add",
        "pre_remove",
        "post_remove",
        "pre_add",
        "post_add",
    ]


def test_m2m_changed_other_relations_of_the_model_do_not_run_it():
    calls, hook = recorder()
    m2m_changed(Tag.articles)(hook)
    a, b = Tag.objects.create(name="a"), Tag.objects.create(name="b")
    a.related.add(b)  # Tag's other relation: another through model
    assert calls == []
    # Only the relation's through model got a receiver.
    assert signals.m2m_changed.has_listeners(Article.tags.through)
    assert not signals.m2m_changed.has_listeners(Tag.related.through)


def test_m2m_changed_self_relation_runs_once_per_change():
    calls, hook = recorder()
    m2m_changed("testapp.Tag.related")(hook)
    a, b = Tag.objects.create(name="a"), Tag.objects.create(name="b")
    a.related.add(b)
    assert summary(calls) == [("post_add", a, False, Tag, {b.pk}, "default")]


def test_m2m_changed_when_priority_and_order():
    order = []
    m2m_changed(Article.tags, priority=5)(lambda **kw: order.append("late"))
    m2m_changed(Tag.articles, priority=-1)(lambda **kw: order.append("early"))
    m2m_changed(Article.tags, when=lambda instance: isinstance(instance, Tag))(
        lambda **kw: order.append("from a tag")
    )
    article, tag = Article.objects.create(title="a"), Tag.objects.create(name="t")
    article.tags.add(tag)
    assert order == ["early", "late"]
    order.clear()
    tag.articles.remove(article)
    assert order == ["early", "from a tag", "late"]


def test_m2m_changed_shares_the_rules_receiver_and_keeps_both():
    calls, hook = recorder()
    invalidate(Article, keys=["article:{pk}"])
    m2m_changed(Article.tags)(hook)
    article, tag = Article.objects.create(title="a"), Tag.objects.create(name="t")
    with transaction.atomic():
        article.tags.add(tag)
    assert [c["action"] for c in calls] == ["post_add"]
    # One receiver (the registry's) serves the rule and the hook: taking it away
    # leaves the through model with none.
    through = Article.tags.through
    assert signals.m2m_changed.disconnect(sender=through, dispatch_uid=registry.name)
    assert not signals.m2m_changed.has_listeners(through)


def test_m2m_changed_on_commit_waits_for_the_commit(django_capture_on_commit_callbacks):
    calls, hook = recorder()
    m2m_changed(Article.tags, on_commit=True)(hook)
    article, tag = Article.objects.create(title="a"), Tag.objects.create(name="t")
    with django_capture_on_commit_callbacks(execute=True):
        article.tags.add(tag)
        assert calls == []
    assert [(c["action"], c["pk_set"]) for c in calls] == [("post_add", {tag.pk})]


@pytest.mark.django_db(transaction=True)
def test_m2m_changed_on_commit_never_after_a_rollback():
    calls, hook = recorder()
    m2m_changed(Tag.articles, on_commit=True)(hook)
    article, tag = Article.objects.create(title="a"), Tag.objects.create(name="t")
    with pytest.raises(RuntimeError), transaction.atomic():
        tag.articles.add(article)
        raise RuntimeError("rolled back")
    assert calls == []
    with transaction.atomic():
        tag.articles.add(article)
        assert calls == []
    assert [c["instance"] for c in calls] == [tag]


def test_m2m_changed_muted():
    calls, hook = recorder()
    m2m_changed(Article.tags)(hook)
    article, tag = Article.objects.create(title="a"), Tag.objects.create(name="t")
    with muted():
        article.tags.add(tag)
    with muted(hook):
        article.tags.remove(tag)
    with muted(Article):
        tag.articles.add(article)
    with muted(Author):
        article.tags.clear()
    assert [c["action"] for c in calls] == ["post_clear"]


def test_m2m_changed_of_a_parent_runs_for_its_child_and_proxy():
    calls, hook = recorder()
    m2m_changed(Article.tags)(hook)
    from tests.testapp.models import PublishedArticle

    proxy = PublishedArticle.objects.create(title="p")
    tag = Tag.objects.create(name="t")
    proxy.tags.add(tag)
    assert [(c["instance"], c["model"]) for c in calls] == [(proxy, Tag)]


def test_m2m_changed_returns_the_function_and_registers_after_ready():
    def hook(**kwargs):
        pass

    assert m2m_changed(Article.tags)(hook) is hook
    [registered] = [h for h in registry.hooks() if h.func is hook]
    assert registered.model is Article
    assert registered.m2m is not None and registered.m2m.through is Article.tags.through


# -- 2. refused at decoration time ------------------------------------------------------


def test_m2m_changed_refuses_what_is_not_many_to_many():
    with pytest.raises(TypeError, match=r"testapp\.Article\.title is a CharField, not a many"):
        m2m_changed(Article.title)
    with pytest.raises(TypeError, match=r"@post_save\(Article, changed='author'\)"):
        m2m_changed(Article.author)
    with pytest.raises(TypeError, match=r"testapp\.Comment\.article is a ForeignKey"):
        m2m_changed(Article.comments)
    with pytest.raises(TypeError, match=r"pass a many-to-many descriptor"):
        m2m_changed(Article)
    with pytest.raises(ValueError, match=r"testapp\.Article\.title is a CharField.*one of"):
        m2m_changed("testapp.Article.title")
    with pytest.raises(
        ValueError, match=r"Article\.nope is not a field of it\. .*relations: tags\.$"
    ):
        m2m_changed("testapp.Article.nope")
    with pytest.raises(TypeError, match=r'"app_label\.Model\.field"'):
        m2m_changed("testapp.Article")
    with pytest.raises(TypeError, match=r'"app_label\.Model\.field"'):
        m2m_changed("testapp.Article.tags.name")
    with pytest.raises(ValueError, match=r"Tag\.name is a CharField.*: related, articles\.$"):
        m2m_changed("testapp.Tag.name")
    with pytest.raises(ValueError, match=r"testapp\.Author has no many-to-many relation"):
        m2m_changed("testapp.Author.name")


def test_m2m_changed_unknown_model_after_start_up_raises_at_once():
    def hook(**kwargs):
        pass

    with pytest.raises(
        ImproperlyConfigured, match=r"no installed model is called 'testapp\.Missing'"
    ):
        m2m_changed("testapp.Missing.tags")(hook)
    assert not [name for name, _ in registry.unresolved if name == "testapp.Missing"]


def test_m2m_changed_refuses_bad_actions():
    with pytest.raises(ValueError, match=r"Article\.tags, action='add'.*post_add"):
        m2m_changed(Article.tags, action="add")
    with pytest.raises(ValueError, match=r"action='clear'"):
        m2m_changed(Tag.articles, action=["post_add", "clear"])
    with pytest.raises(TypeError, match=r"action=\[\]\): name at least one"):
        m2m_changed(Article.tags, action=[])
    with pytest.raises(TypeError, match=r"action='pre_add', on_commit=True"):
        m2m_changed(Article.tags, action=["post_add", "pre_add"], on_commit=True)


def test_m2m_changed_lazy_string_checked_when_the_registry_resolves():
    from signalhooks.registry import Registry

    fresh = Registry(name="test-m2m-lazy")
    with fresh.isolated():
        from signalhooks.hooktypes import Event, Hook
        from signalhooks.m2m import Relation

        fresh.add(
            Hook(
                func=lambda **kw: None,
                event=Event.M2M_CHANGED,
                sender="testapp.Article",
                m2m=Relation(name="title", actions=frozenset({"post_add"})),
                label="lazy",
            )
        )
        with pytest.raises(ImproperlyConfigured, match=r"lazy: .*Article\.title is a CharField"):
            fresh.setup()


def test_m2m_changed_names_models_without_relations():
    with pytest.raises(ValueError, match=r"Comment\.text is a TextField.*has no many-to-many"):
        m2m_changed(f"testapp.{Comment.__name__}.text")


# -- 3. seen by the command, the recorder and the panel ---------------------------------


def test_m2m_changed_listed_by_the_command(capsys):
    m2m_changed(Tag.articles, action=["post_clear", "pre_add"], priority=3)(lambda **kw: None)
    call_command("signalhooks", "--json")
    listed = json.loads(capsys.readouterr().out)["testapp.Tag"]
    [hook] = [h for h in listed if h["event"] == "m2m_changed"]
    assert hook["conditions"] == {
        "field": "testapp.Tag.articles",
        "action": ["pre_add", "post_clear"],
    }
    assert (hook["kind"], hook["priority"], hook["on_commit"]) == ("hook", 3, False)
    assert hook["source"].endswith(".py:" + hook["source"].rsplit(":", 1)[1])


def test_m2m_changed_seen_by_the_recorder(signalhooks_record):
    calls, hook = recorder()
    m2m_changed(Article.tags, on_commit=True)(hook)
    article, tag = Article.objects.create(title="a"), Tag.objects.create(name="t")
    article.tags.add(tag)
    signalhooks_record.assert_hook_ran(hook, times=1)
    [run] = signalhooks_record.hooks
    assert (run.event, run.sender, run.instance) == ("m2m_changed", Article.tags.through, article)


@pytest.mark.django_db(transaction=True)
def test_m2m_changed_shown_by_the_panel():
    from django.http import HttpResponse

    from tests.test_contrib_debug_toolbar import through_the_toolbar

    calls, hook = recorder()
    m2m_changed(Tag.articles)(hook)
    article, tag = Article.objects.create(title="a"), Tag.objects.create(name="t")

    def view(request):
        tag.articles.add(article)
        return HttpResponse("ok")

    panel = through_the_toolbar(view)
    [shown] = panel.get_stats()["hooks"]
    assert shown["event"] == "m2m_changed"
    assert shown["label"] == f"{hook.__module__}.{hook.__qualname__}"
    assert shown["pk"] == str(tag.pk)
    assert "m2m_changed" in panel.content
