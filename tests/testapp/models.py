from __future__ import annotations

from typing import Any

from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100)


class Article(models.Model):
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=20, default="draft")
    author = models.ForeignKey(Author, null=True, blank=True, on_delete=models.CASCADE)
    data = models.JSONField(default=dict, blank=True)
    tags: models.ManyToManyField[Tag, Any] = models.ManyToManyField(
        "Tag", blank=True, related_name="articles"
    )


class PublishedArticle(Article):
    """A proxy: hooks of Article run for it too."""

    class Meta:
        proxy = True


class Tag(models.Model):
    name = models.CharField(max_length=50)
    related = models.ManyToManyField("self", blank=True)


class Comment(models.Model):
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="comments")
    text = models.TextField()


class Plain(models.Model):
    """Nothing hooks this model: it must get no receivers."""

    name = models.CharField(max_length=50)
