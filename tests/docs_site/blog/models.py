"""The models every example in README.md and docs/ uses (tests/test_docs.py runs them)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from signalhooks import HooksQuerySet


class Post(models.Model):
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, blank=True)
    status = models.CharField(max_length=20, default="draft")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts"
    )
    # Kept by counter(), total() and touch() in the examples.
    comment_count = models.PositiveIntegerField(default=0, editable=False)
    approved_count = models.PositiveIntegerField(default=0, editable=False)
    likes = models.IntegerField(default=0, editable=False)
    updated_at = models.DateTimeField(null=True, editable=False)

    objects = HooksQuerySet.as_manager()

    def __str__(self) -> str:
        return self.title


class Comment(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    body = models.TextField()
    approved = models.BooleanField(default=False)
    likes = models.IntegerField(default=0)

    objects = HooksQuerySet.as_manager()

    def __str__(self) -> str:
        return self.body[:40]


class Tag(models.Model):
    name = models.CharField(max_length=50)
    posts = models.ManyToManyField(Post, related_name="tags")

    def __str__(self) -> str:
        return self.name
