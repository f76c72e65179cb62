"""Everything signalhooks does for the blog, in one place (imported on start-up).

Only the public API: ``from signalhooks import ...``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone
from django.utils.text import slugify

from signalhooks import counter, invalidate, post_save, pre_save, touch, user_registered

from .models import Comment, Post
from .pages import AUTHOR_TAG, HOME_KEY, POST_KEY
from .tasks import mail_comment_author

logger = logging.getLogger("sample_project")

# -- cache invalidation ---------------------------------------------------------------
# pages.py caches the home page as "home", each post page as "post:<slug>", and each
# author page under the tag "author:<id>". A post saved or deleted deletes "home" and
# its own page's key (the old AND the new one when the slug changes) and bumps its
# author's tag. After commit, all in one Redis round trip.
# The sidebar of every page (blog/base.html: {% cached "sidebar:recent" tags="posts" %})
# lists the newest posts with their comment counts: any post change bumps "posts" too.
# One rule for all of it: outside a transaction each rule is a round trip of its own.
invalidate(Post, keys=[HOME_KEY, POST_KEY], tags=[AUTHOR_TAG, "posts"])

# -- related records ------------------------------------------------------------------
# Post.comment_count and Post.updated_at follow the comments: one F() UPDATE of the
# post per comment saved or deleted, which then runs Post's rule above. So a new
# comment refreshes the home page and the post page with no rule on Comment.
counter(Comment, "post", "comment_count")
touch(Comment, "post", "updated_at")


# -- model hooks ----------------------------------------------------------------------
@pre_save(Post, when=lambda post: not post.slug)
def fill_slug(sender: type[Post], instance: Post, **kwargs: Any) -> None:
    """Make a unique slug from the title when none was given."""
    base = slugify(instance.title)[:180] or "post"
    slug, n = base, 1
    while Post.objects.filter(slug=slug).exclude(pk=instance.pk).exists():
        n += 1
        slug = f"{base}-{n}"
    instance.slug = slug


@pre_save(Post, changed=["title", "slug", "body", "published"])
def stamp(sender: type[Post], instance: Post, **kwargs: Any) -> None:
    """Move ``updated_at`` when the content changes (comments move it through touch())."""
    instance.updated_at = timezone.now()


@post_save(Comment, created=True, on_commit=True)
def notify_author(sender: type[Comment], instance: Comment, **kwargs: Any) -> None:
    """Queue the mail to the post's author, once the comment is committed.

    The task worker sends it: the request that saved the comment renders and sends
    nothing (it pays one INSERT, the queued task).
    """
    mail_comment_author.enqueue(instance.pk)


# -- users ----------------------------------------------------------------------------
# The welcome mail needs nothing here: signalhooks' built-in receiver sends it on
# user_registered (SIGNALHOOKS["WELCOME_MAIL"], on by default). Others can listen too.
def log_registration(sender: Any, user: Any, request: Any = None, **kwargs: Any) -> None:
    logger.info("user_registered: %s", user.get_username())


user_registered.connect(log_registration, dispatch_uid="blog.log_registration")
