"""``manage.py demo``: seed the blog, then show what each hook does, step by step."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management.base import BaseCommand
from django.db import transaction

from sample_project.blog import pages
from sample_project.blog.models import Comment, Post
from sample_project.blog.seed import PASSWORD, seed
from sample_project.devtools.models import Mail
from sample_project.devtools.worker import deliver_mail
from signalhooks import cache_invalidated, is_cached, recount, user_registered

READER = "dora"
POST = "hello-signalhooks"


@dataclass
class Seen:
    """What the hooks did during one step."""

    flushes: list[dict[str, list[str]]] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    mails: list[Mail] = field(default_factory=list)


@contextmanager
def watch() -> Iterator[Seen]:
    """Record cache flushes, user_registered signals and mails sent inside the block."""
    seen = Seen()

    def on_flush(sender: str, keys: list[str], tags: list[str], **kwargs: Any) -> None:
        seen.flushes.append({"keys": keys, "tags": tags})

    def on_registered(sender: Any, user: Any, **kwargs: Any) -> None:
        seen.registered.append(user.get_username())

    last = Mail.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    cache_invalidated.connect(on_flush, dispatch_uid="demo.watch")
    user_registered.connect(on_registered, dispatch_uid="demo.watch")
    try:
        yield seen
    finally:
        cache_invalidated.disconnect(dispatch_uid="demo.watch")
        user_registered.disconnect(dispatch_uid="demo.watch")
    deliver_mail()  # the request queued the mail; the worker (here: in-process) sends it
    seen.mails = list(Mail.objects.filter(pk__gt=last).order_by("pk"))


def when(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S.%f")[:-3]


class Command(BaseCommand):
    help = "Seed the sample blog (idempotent) and print what each signalhooks hook does."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--seed-only", action="store_true", help="Seed, skip the walkthrough.")

    def handle(self, *args: Any, seed_only: bool = False, **options: Any) -> None:
        self.header()
        with watch() as seen:
            created = seed()
        if created:
            self.say(
                f"Seeded {created.users} users, {created.posts} posts, {created.comments} "
                f"comments ({len(seen.mails)} welcome mails; comment mails muted)."
            )
        else:
            self.say("Seed data already there: nothing added.")
        if not seed_only:
            self.walkthrough()
        self.say(
            f"\nAccounts: admin, alice, bob, carol, {READER} — password {PASSWORD!r}. "
            "Pages: / (home), /dev/mailbox/, /dev/invalidations/, /admin/.\n"
            "Every hook, rule and counter: python sample_project/manage.py signalhooks"
        )

    # -- output ------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        self.stdout.write(text)

    def step(self, title: str, code: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"\n{title}"))
        self.stdout.write(f"   >>> {code}")

    def report(self, seen: Seen) -> None:
        for name in seen.registered:
            self.say(f"   user_registered sent for {name} (after commit)")
        for mail in seen.mails:
            self.say(f"   mail to {mail.recipients} (sent by the task worker): {mail.subject!r}")
        for flush in seen.flushes:
            keys = ", ".join(flush["keys"]) or "-"
            tags = ", ".join(flush["tags"]) or "-"
            self.say(f"   cache_invalidated: keys deleted: {keys}; tags bumped: {tags}")
        if len(seen.flushes) > 1:
            self.say(f"   ({len(seen.flushes)} flushes: one per transaction)")

    def cached_keys(self, *keys: str) -> str:
        return ", ".join(f"{key} {'cached' if is_cached(key) else 'gone'}" for key in keys)

    def header(self) -> None:
        if settings.CACHE_IS_REDIS:
            where = f"Redis at {settings.REDIS_URL}, key prefix {settings.CACHE_KEY_PREFIX!r}"
        else:
            where = f"an in-process cache: no Redis answered at {settings.REDIS_URL}"
        self.say(self.style.SUCCESS("signalhooks sample project: demo"))
        self.say(f"Database {settings.DATABASES['default']['NAME']}; cache: {where}.")
        # Pages cached from an older database (say, before db.sqlite3 was deleted) go.
        if hasattr(cache, "delete_pattern"):
            cache.delete_pattern("*")  # django-redis: only the keys under our KEY_PREFIX
        elif not settings.CACHE_IS_REDIS:
            cache.clear()  # the in-process fallback: this process's own memory

    # -- the walkthrough ---------------------------------------------------------------
    def walkthrough(self) -> None:
        users = get_user_model()._default_manager
        post = Post.objects.get(slug=POST)
        key = pages.POST_KEY.format(slug=POST)

        previous = users.filter(username=READER).first()
        if previous is not None:
            self.step(
                f"0. Remove {READER} from the last run: her post and comments go with her",
                f"User.objects.get(username={READER!r}).delete()",
            )
            with watch() as seen:
                _, by_model = previous.delete()
            gone = ", ".join(f"{n} {label}" for label, n in sorted(by_model.items()))
            self.say(f"   deleted {gone}")
            self.report(seen)

        self.step(
            "1. A reader registers: user_registered -> the built-in welcome mail",
            f"User.objects.create_user({READER!r}, ...)",
        )
        with watch() as seen:
            dora = users.create_user(READER, f"{READER}@sample.signalhooks.test", PASSWORD)
        self.report(seen)

        self.step("2. The pages are cached", 'cached("home", ...), cached("post:<slug>", ...)')
        pages.home_html()
        pages.post_html(post.slug)
        self.say(f"   {self.cached_keys(pages.HOME_KEY, key)}")

        self.step(
            f"3. {READER} comments: counter() and touch() update the post, its rule invalidates",
            "Comment.objects.create(post=post, author=dora, body=...)",
        )
        count, stamp = post.comment_count, post.updated_at
        with watch() as seen:
            Comment.objects.create(post=post, author=dora, body="Hello from the demo!")
        post.refresh_from_db()
        self.say(f"   comment_count {count} -> {post.comment_count} (one F() UPDATE)")
        self.say(f"   updated_at    {when(stamp)} -> {when(post.updated_at)} (touch)")
        self.report(seen)
        self.say(f"   now: {self.cached_keys(pages.HOME_KEY, key)}")
        self.say("   (the mail: notify_author, a post_save(on_commit=True) hook, queued a task)")

        self.step(
            "4. Two comments in one transaction: one flush after commit",
            "with transaction.atomic(): Comment.objects.create(...) x 2",
        )
        count = post.comment_count
        with watch() as seen, transaction.atomic():
            for text in ("First of two.", "Second of two."):
                Comment.objects.create(post=post, author=dora, body=text)
            self.say(f"   inside the transaction: {len(seen.flushes)} flushes")
        post.refresh_from_db()
        self.say(f"   comment_count {count} -> {post.comment_count}")
        self.report(seen)

        self.step(
            f"5. {READER} writes a post and renames its slug: old AND new keys go",
            'post.slug = "doras-notes"; post.save()',
        )
        with watch() as seen:
            own = Post.objects.create(title="Dora's first post", author=dora, body="Hi!")
        self.say(f"   created with slug {own.slug!r} (the fill_slug pre_save hook)")
        self.report(seen)
        pages.post_html(own.slug)
        own.slug = "doras-notes"
        with watch() as seen:
            own.save()
        self.report(seen)

        self.step(
            "6. A bulk delete through HooksQuerySet keeps the counter right",
            f"Comment.objects.filter(author=dora, post__slug={POST!r}).delete()",
        )
        count = post.comment_count
        with watch() as seen:
            deleted, _ = Comment.objects.filter(author=dora, post=post).delete()
        post.refresh_from_db()
        self.say(f"   {deleted} comments deleted; comment_count {count} -> {post.comment_count}")
        self.report(seen)

        self.step(
            "7. A counter drifts behind signalhooks' back; recount() repairs it",
            "Post.objects.filter(...).update(comment_count=0); recount(Post)",
        )
        Post.objects.filter(pk=post.pk).update(comment_count=0)
        for field_name, rows in recount(Post).items():
            for pk, (stored, right) in rows.items():
                title = Post.objects.get(pk=pk).title
                self.say(f"   {title!r}: {field_name} {stored} -> {right}")
