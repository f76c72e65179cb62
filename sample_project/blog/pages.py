"""The cached parts of the pages, and the cache keys they live under.

Each page's expensive part (the post list, a post with its comments, an author's
posts) is rendered once and kept in the cache with ``cached()``; hooks.py deletes
the keys when the rows behind them change. The rest of a page (who is logged in,
the CSRF token, the invalidations panel) is rendered per request.
"""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils import timezone

from signalhooks import cached

from .models import Post

#: Key templates, formatted with a Post's fields by the invalidate() rule in hooks.py.
HOME_KEY = "home"
POST_KEY = "post:{slug}"
AUTHOR_TAG = "author:{author_id}"

TIMEOUT = 600


def home_html() -> str:
    """Return the post list of the home page (key ``home``)."""

    def render() -> str:
        posts = Post.objects.published().select_related("author")
        context = {"posts": posts, "rendered_at": timezone.now()}
        return render_to_string("blog/_post_list.html", context)

    # The hottest page: recomputed a little before it expires (XFetch), by one reader,
    # so its expiry never makes a crowd of readers wait for the same render.
    return cached(HOME_KEY, render, timeout=TIMEOUT, early=1.0)


def post_html(post: Post) -> str:
    """Return a post with its comments (key ``post:<slug>``)."""

    def render() -> str:
        comments = post.comments.select_related("author")
        context = {"post": post, "comments": comments, "rendered_at": timezone.now()}
        return render_to_string("blog/_post.html", context)

    return cached(POST_KEY.format(slug=post.slug), render, timeout=TIMEOUT)


def author_html(author_id: int) -> str:
    """Return an author's posts, cached under the tag ``author:<id>``."""

    def render() -> str:
        posts = Post.objects.published().filter(author_id=author_id)
        return render_to_string(
            "blog/_author_posts.html",
            {"posts": posts, "author_id": author_id, "rendered_at": timezone.now()},
        )

    return cached(
        f"author-page:{author_id}",
        render,
        tags=[AUTHOR_TAG.format(author_id=author_id)],
        timeout=TIMEOUT,
    )
