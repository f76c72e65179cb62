"""What must hold after the load and the faults, checked against the database.

Runs in the driver process, set up with loadtest.settings (the same PostgreSQL and
Redis as the servers). Each check returns a :class:`Check` with its evidence.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Count, Max
from django.test import override_settings
from sample_project.blog import pages
from sample_project.blog.models import Post
from sample_project.devtools.models import Mail

from signalhooks.mail import email_address, render
from signalhooks.models import WelcomeMail

# Only the render time differs between two renders of the same rows.
RENDERED_AT = re.compile(r"rendered \d\d:\d\d:\d\d")
# A cache that never holds anything: cached() through it always renders afresh.
FRESH = {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}


@dataclass
class Check:
    name: str
    passed: bool
    summary: str
    details: list[str] = field(default_factory=list)


def _pages() -> dict[str, object]:
    """Return every cached page fragment of the site by its key, through cached()."""
    found: dict[str, object] = {"home": pages.home_html()}
    for post in Post.objects.select_related("author"):
        found[f"post:{post.slug}"] = pages.post_html(post.slug)
    for author_id in Post.objects.values_list("author_id", flat=True).distinct():
        found[f"author-page:{author_id}"] = pages.author_html(author_id)
    return found


def pages_fresh() -> Check:
    """No page served from the cache differs from a fresh render of the database."""
    served = _pages()
    from django.conf import settings

    with override_settings(CACHES={**settings.CACHES, "default": FRESH}):
        fresh = _pages()
    stale = [
        key
        for key, value in served.items()
        if RENDERED_AT.sub("", str(value)) != RENDERED_AT.sub("", str(fresh.get(key)))
    ]
    return Check(
        "cached pages equal a fresh render",
        not stale,
        f"{len(stale)} of {len(served)} cached fragments are stale",
        [f"stale: {key}" for key in stale],
    )


def counters_exact() -> Check:
    """Every Post.comment_count equals its comments; updated_at is not before the last one."""
    wrong = []
    posts = Post.objects.annotate(comments_n=Count("comments"), last=Max("comments__created_at"))
    for post in posts:
        if post.comment_count != post.comments_n:
            wrong.append(f"{post.slug}: comment_count {post.comment_count}, {post.comments_n} rows")
        if post.last is not None and post.updated_at < post.last:
            wrong.append(f"{post.slug}: updated_at {post.updated_at} before a comment {post.last}")
    total = sum(p.comments_n for p in posts)
    return Check(
        "counters and touches exact",
        not wrong,
        f"{len(wrong)} wrong over {len(posts)} posts ({total} comments)",
        wrong,
    )


def one_mail_per_user() -> Check:
    """Every user with an address got exactly one welcome mail (matched by its subject)."""
    mails = Counter((m.to, m.subject) for m in Mail.objects.only("to", "subject"))
    wrong = []
    users = [u for u in get_user_model()._default_manager.all() if email_address(u)]
    for user in users:
        n = mails[(email_address(user), render(user).subject)]
        if n != 1:
            wrong.append(f"{user.get_username()}: {n} welcome mails")
    return Check(
        "exactly one welcome mail per user",
        not wrong,
        f"{len(wrong)} of {len(users)} users did not get exactly one",
        wrong[:50] + ([f"... and {len(wrong) - 50} more"] if len(wrong) > 50 else []),
    )


def no_stuck_delivery() -> Check:
    """No welcome-mail delivery row is left pending, sending or failed."""
    done = [WelcomeMail.Status.SENT, WelcomeMail.Status.SKIPPED]
    stuck = WelcomeMail.objects.exclude(status__in=done).order_by("pk")
    by_status = Counter(stuck.values_list("status", flat=True))
    return Check(
        "no delivery row stuck",
        not by_status,
        ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "none stuck",
        [f"user {r.user_pk}: {r.status} after {r.attempts} attempt(s)" for r in stuck[:50]],
    )


def run_all() -> list[Check]:
    return [pages_fresh(), counters_exact(), one_mail_per_user(), no_stuck_delivery()]
