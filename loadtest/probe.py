"""The stale-read probe: comments racing the reads of one hot post, then the pages checked.

Each round, four readers fetch the post's page again and again while two signed-in
users comment on it at the same moment (twice each, one after the other). Once every
comment is committed (its POST answered) and the readers have stopped, the pages those
comments changed (the post's, the home page, its author's) are fetched through HTTP, and
each one's cached fragment must equal a fresh render of the database, made here through
a cache that holds nothing. After the last round every cached page of the site is
checked the same way. A compute that used a row read before ``cached()`` looked up (say,
the post's ``comment_count`` loaded by the view) can store a page made from the count
read before a comment committed, stale for the page's whole timeout: that is what fails
a round. Nothing else writes while the probe runs.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import override_settings
from sample_project.blog import pages
from sample_project.blog.models import Post

from .checks import FRESH, RENDERED_AT, Check
from .load import Actor, LoggedIn, Site, _Failed

ROUNDS = 30
READERS = 4
COMMENTERS = ("alice", "bob")
COMMENTS_EACH = 2
#: gunicorn sync workers for the probe: one per reader and commenter, so that a reader
#: is between its reads while a comment commits (with fewer, the commenters would take
#: the workers the readers need, and the race the probe looks for would hardly happen).
WORKERS = READERS + len(COMMENTERS)


class _Visitor(Actor):
    """A reader driven by the probe's own loop (not started as a thread)."""


def fresh_fragments(post: Post | None = None) -> dict[str, str]:
    """Return {path: that page's cached fragment rendered afresh}, render time removed.

    Every page of the site, or only those showing ``post``.
    """
    users = dict(get_user_model()._default_manager.values_list("pk", "username"))
    posts = Post.objects.published().select_related("author")
    authors = list(Post.objects.values_list("author_id", flat=True).distinct())
    if post is not None:
        posts, authors = posts.filter(pk=post.pk), [post.author_id]
    with override_settings(CACHES={**settings.CACHES, "default": FRESH}):
        found = {"/": pages.home_html()}
        for row in posts:
            found[f"/posts/{row.slug}/"] = pages.post_html(row.slug)
        for author_id in authors:
            found[f"/authors/{users[author_id]}/"] = pages.author_html(author_id)
    return {path: RENDERED_AT.sub("", html) for path, html in found.items()}


def stale_pages(site: Site, post: Post | None = None) -> list[str]:
    """Return the paths whose page, as served now, lacks its fresh cached fragment."""
    fresh = fresh_fragments(post)
    visitor = _Visitor(site, "probe-check")

    def served(path: str) -> str:
        return RENDERED_AT.sub("", visitor.call("probe-check", "GET", path).body)

    with ThreadPoolExecutor(3) as pool:
        bodies = dict(zip(fresh, pool.map(served, fresh), strict=True))
    return [path for path, fragment in fresh.items() if fragment not in bodies[path]]


def one_round(site: Site, post: Post, commenters: list[tuple[LoggedIn, str]], n: int) -> None:
    """Race the comments of ``commenters`` against the readers of ``post``'s page."""
    path = post.get_absolute_url()
    stop = threading.Event()

    def read(visitor: Actor) -> None:
        while not stop.is_set():
            # A failed read is recorded (and fails nothing here): it is no stale page.
            with contextlib.suppress(_Failed):
                visitor.call("probe-read", "GET", path)

    barrier = threading.Barrier(len(commenters))

    def comment(commenter: LoggedIn, token: str) -> None:
        barrier.wait(30)
        for i in range(COMMENTS_EACH):
            body = f"Probe round {n + 1}, comment {i + 1} by {commenter.username}."
            form = [("csrfmiddlewaretoken", token), ("body", body)]
            commenter.call("probe-comment", "POST", path, form, expect=(302,))

    readers = [
        threading.Thread(target=read, args=(_Visitor(site, f"probe-reader-{i}"),), daemon=True)
        for i in range(READERS)
    ]
    for thread in readers:
        thread.start()
    with ThreadPoolExecutor(len(commenters)) as pool:
        # Every comment committed and invalidated once its POST is answered.
        list(pool.map(lambda c: comment(*c), commenters))
    stop.set()  # the reads in flight finish: those are the ones that raced the last commit
    for thread in readers:
        thread.join(60)


def run(site: Site, rounds: int = ROUNDS) -> Check:
    """Run ``rounds`` rounds on the first hot post; a round fails if a page is stale after it."""
    post = Post.objects.filter(pk__in=site.slugs).order_by("pk").first()
    assert post is not None
    commenters = []
    for name in COMMENTERS:
        commenter = LoggedIn(site, f"probe-{name}", name)
        commenter.log_in()
        page = commenter.call("probe-read", "GET", post.get_absolute_url())
        commenters.append((commenter, commenter.browser.csrf(page.body)))
    failed = []
    for n in range(rounds):
        one_round(site, post, commenters, n)
        stale = stale_pages(site, post)
        if stale:
            failed.append(f"round {n + 1}: stale after the comments: {', '.join(stale)}")
    stale = stale_pages(site)
    if stale:
        failed.append(f"after the last round: stale: {', '.join(stale)}")
    return Check(
        "stale-read probe: pages fresh after comments race their reads",
        not failed,
        f"{rounds - sum(f.startswith('round') for f in failed)} of {rounds} rounds left "
        f"the pages fresh ({post.get_absolute_url()}, {COMMENTS_EACH * len(COMMENTERS)} "
        f"comments against {READERS} readers a round); every page fresh at the end: "
        f"{'no' if stale else 'yes'}",
        failed,
    )
