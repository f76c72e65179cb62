from __future__ import annotations

import pytest

from signalhooks import changes, post_save, pre_save
from tests.testapp.models import Article


@pytest.mark.django_db
def test_smoke():
    calls = []

    @post_save(Article)
    def on_save(sender, instance, changes, **kwargs):
        calls.append(dict(changes))

    @pre_save(Article, changed="title")
    def reslug(sender, instance, changes, **kwargs):
        instance.slug = instance.title.lower()

    a = Article.objects.create(title="Hello")
    assert a.slug == "hello"
    a.title = "World"
    assert changes(a) == {"title": ("Hello", "World")}
    a.save()
    assert calls[-1] == {"title": ("Hello", "World")}
    a.save()
    assert calls[-1] == {}
