"""Checked by ``mypy --strict`` in ``make lint``: user code with the decorators type-checks.

Never imported by the test run; ``assert_type`` fails mypy if a decorator loses the
decorated function's type.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any, assert_type

from signalhooks import changes, muted, post_delete, post_save, pre_delete, pre_save, track
from tests.testapp.models import Article


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


@muted(Article)
def quiet(title: str) -> Article:
    return Article.objects.create(title=title)


assert_type(notify(Article, Article()), None)
assert_type(reslug(Article, Article(), {"title": ("a", "b")}), str)
assert_type(audit(user=None), Coroutine[Any, Any, int])  # type: ignore[unused-coroutine]
assert_type(quiet("x"), Article)
assert_type(changes(Article()), Mapping[str, tuple[Any, Any]])
track(Article, "title", "slug")
