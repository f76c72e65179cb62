"""Checked by ``mypy --strict`` in ``make lint``: user code with the decorators type-checks.

Never imported by the test run; ``assert_type`` fails mypy if a decorator loses the
decorated function's type.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any, assert_type

from signalhooks import (
    changes,
    m2m_changed,
    muted,
    post_delete,
    post_save,
    pre_delete,
    pre_save,
    track,
)
from tests.testapp.models import Article, Tag


@post_save(Article, created=True, on_commit=True)
def notify(sender: type[Article], instance: Article, **kwargs: Any) -> None: ...


@pre_save(Article, changed="title", priority=-1)
def reslug(sender: type[Article], instance: Article, changes: dict[str, Any], **kwargs: Any) -> str:
    return str(changes["title"][1])


@post_save("auth.User", when=lambda user: bool(user.is_active))
async def audit(**kwargs: Any) -> int:
    return 1


@pre_delete(Article)
@post_delete(Article, on_commit=True)
def gone(**kwargs: Any) -> None: ...


@m2m_changed(Article.tags, action=["post_add", "post_remove"], on_commit=True)
def retag(instance: Article | Tag, pk_set: set[int] | None, **kwargs: Any) -> int:
    return len(pk_set or ())


@m2m_changed(Article.tags)
@m2m_changed("testapp.Article.tags", action="pre_clear", priority=1)
async def cleared(**kwargs: Any) -> None: ...


@muted(Article)
def quiet(title: str) -> Article:
    return Article.objects.create(title=title)


assert_type(notify(Article, Article()), None)
assert_type(reslug(Article, Article(), {"title": ("a", "b")}), str)
assert_type(audit(user=None), Coroutine[Any, Any, int])  # type: ignore[unused-coroutine]
assert_type(quiet("x"), Article)
assert_type(retag(Article(), {1}), int)
assert_type(cleared(), Coroutine[Any, Any, None])  # type: ignore[unused-coroutine]
assert_type(changes(Article()), Mapping[str, tuple[Any, Any]])
track(Article, "title", "slug")
