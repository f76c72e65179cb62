"""The cached parts of the pages, and the cache keys they live under.

Each page's expensive part (the post list, a post with its comments, an author's
posts) is rendered once and kept in the cache with ``cached()``; hooks.py deletes
the keys when the rows behind them change. The rest of a page (who is logged in,
the CSRF token, the invalidations panel) is rendered per request.

Every row a cached part shows is read inside its computation, never passed in: the
lease ``cached()`` takes on a miss covers only what is read after the lookup. A post
the view loaded earlier could miss a comment's new count committed in between, and
the page made from it would stay stale for its whole timeout.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.utils import timezone

from signalhooks import cached, cached_from

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


def post_html(slug: str) -> str:
    """Return a post with its comments (key ``post:<slug>``); 404 if there is no such post.

    Takes the slug, not the view's Post: cached_from() loads the post on a miss, after
    the lookup, so its comment_count is as new as the comments rendered with it.
    """

    def load() -> Post:
        return get_object_or_404(Post.objects.select_related("author"), slug=slug)

    def render(post: Post) -> str:
        comments = post.comments.select_related("author")
        context = {"post": post, "comments": comments, "rendered_at": timezone.now()}
        return render_to_string("blog/_post.html", context)

    return cached_from(POST_KEY.format(slug=slug), load, render, timeout=TIMEOUT)


def author_html(author_id: int) -> str:
    """Return an author's posts, cached under the tag ``author:<id>`` (the id, not the user)."""

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
