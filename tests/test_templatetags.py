"""``{% load signalhooks %}{% cached key tags=... %}…{% endcached %}`` on a real Redis."""

from __future__ import annotations

import logging

import pytest
from django.core.cache import caches
from django.db import transaction
from django.template import Context, Engine, TemplateSyntaxError

from signalhooks import cached, invalidate, is_cached
from tests.cache_helpers import generation, stored_key
from tests.cacheapp.models import Entry

pytestmark = pytest.mark.django_db(transaction=True)

engine = Engine(libraries={"signalhooks": "signalhooks.templatetags.signalhooks"})


class Renders:
    """A context value that counts how often the block around it rendered."""

    def __init__(self):
        self.count = 0

    def __str__(self):
        self.count += 1
        return f"render {self.count}"


def render(source, **context):
    return engine.from_string("{% load signalhooks %}" + source).render(Context(context))


def test_cached_tag_renders_once_and_invalidates_by_tag():
    invalidate(Entry, tags=["entries", "author:{author_id}"])
    renders = Renders()
    page = '{% cached "sidebar" tags="entries author:1" timeout=300 %}<b>{{ n }}</b>{% endcached %}'
    assert render(page, n=renders) == "<b>render 1</b>"
    assert render(page, n=renders) == "<b>render 1</b>"  # from Redis
    assert is_cached("sidebar", tags=["entries", "author:1"])
    # The same entry as cached() itself keeps: one API, two ways in.
    assert cached("sidebar", lambda: "unused", tags=["entries", "author:1"]) == "<b>render 1</b>"
    before = generation("author:1")
    with transaction.atomic():
        Entry.objects.create(title="t", slug="s", author_id=1)  # bumps author:1 on commit
    assert generation("author:1") == before + 1
    assert render(page, n=renders) == "<b>render 2</b>"
    assert render(page, n=renders) == "<b>render 2</b>"


def test_cached_tag_key_and_tags_from_the_context():
    renders = Renders()
    page = "{% cached key tags=tags %}{{ n }}{% endcached %}"
    assert render(page, key="k:1", tags=["a", "b"], n=renders) == "render 1"
    assert render(page, key="k:1", tags=["a", "b"], n=renders) == "render 1"
    assert render(page, key="k:2", tags=["a", "b"], n=renders) == "render 2"
    assert render(page, key="k:1", tags="a b", n=renders) == "render 1"  # same tags
    assert render(page, key="k:1", tags=["a"], n=renders) == "render 3"  # other tags
    assert render(page, key="k:1", tags=None, n=renders) == "render 4"
    assert is_cached("k:1") and is_cached("k:1", tags=["a", "b"])
    # A key built with a filter.
    page = '{% cached "post:"|add:pk %}{{ n }}{% endcached %}'
    assert render(page, pk="7", n=renders) == "render 5"
    assert is_cached("post:7")


def test_cached_tag_output_is_safe_and_autoescaping_is_kept():
    page = '{% cached "esc" %}{{ html }}<i>{% endcached %}'
    assert render(page, html="<script>") == "&lt;script&gt;<i>"
    assert render(page, html="changed") == "&lt;script&gt;<i>"  # cached, not escaped twice


def test_cached_tag_options_reach_cached(flaky):
    server, backend = flaky
    renders = Renders()
    page = (
        '{% cached "opts" cache=alias timeout=timeout stale=True early=0.5 %}{{ n }}{% endcached %}'
    )
    assert render(page, alias="flaky", timeout="60", n=renders) == "render 1"
    assert is_cached("opts", cache="flaky") and not is_cached("opts")
    assert 0 < backend.ttl(stored_key("opts", backend=backend)) <= 60
    # stale=True keeps the last value apart, early= how long the render took.
    names = {k.decode() for k in server.client().keys("*opts*")}
    assert {n.rsplit("|", 1)[-1] for n in names if "|" in n} >= {"stale", "delta"}
    assert render(page, alias="flaky", timeout=60, n=renders) == "render 1"
    page = '{% cached "forever" cache="flaky" timeout=None %}{{ n }}{% endcached %}'
    assert render(page, n=renders) == "render 2"
    assert backend.ttl(stored_key("forever", backend=backend)) is None  # never expires
    page = '{% cached "default-alias" cache="" %}{{ n }}{% endcached %}'
    assert render(page, n=renders) == "render 3"
    assert is_cached("default-alias")


def test_cached_tag_renders_the_block_when_redis_is_down(flaky, caplog):
    server, _ = flaky
    renders = Renders()
    page = '{% cached "down" tags="entries" cache="flaky" %}{{ n }}{% endcached %}'
    assert render(page, n=renders) == "render 1"
    server.stop()
    with caplog.at_level(logging.ERROR, logger="signalhooks"):
        assert render(page, n=renders) == "render 2"
        assert render(page, n=renders) == "render 3"  # again: rendered, never raised
    assert "reading on cache 'flaky' failed (ConnectionError" in caplog.text


def test_cached_tag_an_error_in_the_block_caches_nothing():
    page = '{% cached "boom" %}{{ obj.explode }}{% endcached %}'

    class Exploding:
        def explode(self):
            raise RuntimeError("broken")

    with pytest.raises(RuntimeError, match="broken"):
        render(page, obj=Exploding())
    assert not is_cached("boom")
    assert render(page, obj=None) == ""


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% cached %}{% endcached %}", r"name the key first"),
        ('{% cached tags="a" %}{% endcached %}', r"name the key first"),
        ('{% cached "k" "extra" %}{% endcached %}', r"'\"extra\"' is not name=value"),
        ('{% cached "k" ttl=5 %}{% endcached %}', r"unknown option ttl=\. Use tags=, timeout="),
        ('{% cached "k" timeout=1 timeout=2 %}{% endcached %}', r"timeout= is given twice"),
        ('{% cached "k" %}never closed', r"Unclosed tag.*'cached'.*endcached"),
    ],
)
def test_cached_tag_bad_syntax(source, message):
    with pytest.raises(TemplateSyntaxError, match=message):
        render(source)


@pytest.mark.parametrize(
    ("source", "context", "message"),
    [
        ("{% cached key %}{% endcached %}", {}, r"the key is ''; it must be a non-empty string"),
        ("{% cached key %}{% endcached %}", {"key": 5}, r"the key is 5"),
        ('{% cached "k" tags=tags %}{% endcached %}', {"tags": 5}, r"tags=5.*space-separated"),
        ('{% cached "k" tags=tags %}{% endcached %}', {"tags": ["a", ""]}, r"list of non-empty"),
        ('{% cached "k" timeout="soon" %}{% endcached %}', {}, r"timeout='soon'.*number"),
        ('{% cached "k" timeout=True %}{% endcached %}', {}, r"timeout=True.*number"),
        ('{% cached "k" timeout=t %}{% endcached %}', {"t": [1]}, r"timeout=\[1\].*number"),
        ('{% cached "k" early="nan" %}{% endcached %}', {}, r"early=nan.*number"),
    ],
)
def test_cached_tag_bad_values(source, context, message):
    with pytest.raises(TemplateSyntaxError, match=message):
        render(source, **context)
    assert not caches["default"].keys("k*")


def test_cached_tag_loads_from_the_installed_app():
    from django.template import engines

    template = engines["django"].from_string(
        '{% load signalhooks %}{% cached "installed" tags="entries" %}ok{% endcached %}'
    )
    assert template.render({}) == "ok"
    assert is_cached("installed", tags=["entries"])
