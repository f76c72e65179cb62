"""Posts and comments. Nothing here knows about caches or counters: hooks.py does."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from signalhooks import HooksQuerySet


class PostQuerySet(HooksQuerySet["Post"]):
    def published(self) -> PostQuerySet:
        return self.filter(published=True)


class Post(models.Model):
    title = models.CharField(max_length=200)
    slug = models.SlugField(
        max_length=200, unique=True, blank=True, help_text="Left empty: made from the title."
    )
    body = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts"
    )
    # Kept by counter(Comment, "post", "comment_count") in hooks.py.
    comment_count = models.PositiveIntegerField(default=0, editable=False)
    # Kept by touch(Comment, "post", "updated_at") and the stamp() hook in hooks.py.
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    published = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    # HooksQuerySet: update(), bulk_*() and delete() apply the cache rules too.
    objects = PostQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("post", kwargs={"slug": self.slug})


class Comment(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="comments"
    )
    body = models.TextField(max_length=2000)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    # Comment.objects.filter(...).delete() or .bulk_create() keep the counters right.
    objects = HooksQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.author} on {self.post}: {self.body[:40]}"
