"""A few users, posts and comments; running it again adds nothing."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from signalhooks import muted

from .hooks import notify_author
from .models import Comment, Post

PASSWORD = "sample-password"

USERS = [
    # username, email, is_superuser
    ("admin", "admin@sample.signalhooks.test", True),
    ("alice", "alice@sample.signalhooks.test", False),
    ("bob", "bob@sample.signalhooks.test", False),
    ("carol", "carol@sample.signalhooks.test", False),
]

POSTS = [
    # slug, title, author, body, comments [(author, body)]
    (
        "hello-signalhooks",
        "Hello, signalhooks",
        "alice",
        "This blog keeps its comment counts, timestamps and cached pages right without a "
        "single hand-written receiver. Everything lives in blog/hooks.py: one invalidate() "
        "rule, one counter(), one touch() and three small hooks.",
        [
            ("bob", "Counters that stay right under bulk deletes too? Nice."),
            ("carol", "And the home page is cached in Redis, yet never stale."),
        ],
    ),
    (
        "pages-that-never-go-stale",
        "Pages that never go stale",
        "bob",
        "The home page and every post page are cached. Saving a post deletes exactly the "
        "keys it appears in, after the transaction commits, in one round trip.",
        [("alice", "Watch the invalidations panel while you comment.")],
    ),
    (
        "one-welcome-mail-per-user",
        "One welcome mail per user",
        "carol",
        "Register and look at the mailbox: the welcome mail went out after the new user's "
        "row committed. Never twice, and a failing mail never fails the sign-up.",
        [("bob", "Mine is in the mailbox."), ("alice", "Mine too.")],
    ),
]


@dataclass
class Seeded:
    users: int = 0
    posts: int = 0
    comments: int = 0

    def __bool__(self) -> bool:
        return bool(self.users or self.posts or self.comments)


# Made-up comments notify nobody: notify_author (a user hook) is muted; the counters,
# touches and cache rules keep running, since they keep the data right.
@muted(notify_author)
def seed() -> Seeded:
    """Create what is missing; return how many rows were created."""
    created = Seeded()
    users = get_user_model()._default_manager
    people = {}
    for username, email, superuser in USERS:
        user = users.filter(username=username).first()
        if user is None:
            with transaction.atomic():  # the welcome mail goes out when this commits
                make = users.create_superuser if superuser else users.create_user
                user = make(username, email, PASSWORD)
            created.users += 1
        people[username] = user
    for slug, title, author, body, comments in POSTS:
        post, new = Post.objects.get_or_create(
            slug=slug, defaults={"title": title, "author": people[author], "body": body}
        )
        created.posts += new
        for commenter, text in comments:
            _, new = Comment.objects.get_or_create(post=post, author=people[commenter], body=text)
            created.comments += new
    return created
