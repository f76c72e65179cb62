from __future__ import annotations

from typing import Any

from django.db import models

from signalhooks import HooksQuerySet, invalidate


class Category(models.Model):
    name = models.CharField(max_length=50)


class Entry(models.Model):
    title = models.CharField(max_length=200)
    slug = models.CharField(max_length=200)
    author_id = models.IntegerField(default=0)
    views = models.IntegerField(default=0)
    categories: models.ManyToManyField[Category, Any] = models.ManyToManyField(
        Category, blank=True, related_name="entries"
    )

    objects = HooksQuerySet.as_manager()


class Note(models.Model):
    text = models.CharField(max_length=50)


# Declared while models load, before the app registry is ready: resolved in ready().
invalidate("cacheapp.Note", keys=["note:{pk}:{text}"], tags=["notes"])
