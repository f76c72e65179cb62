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


class Writer(models.Model):
    name = models.CharField(max_length=50)


class Article(models.Model):
    """A real foreign key (``writer`` / ``writer_id``) and a unique field for upserts."""

    writer = models.ForeignKey(Writer, null=True, on_delete=models.CASCADE, related_name="articles")
    slug = models.CharField(max_length=50, unique=True)
    title = models.CharField(max_length=200, default="")

    objects = HooksQuerySet.as_manager()


class Code(models.Model):
    """A primary key that is not ``id``."""

    code = models.CharField(max_length=20, primary_key=True)
    label = models.CharField(max_length=50, default="")


class Note(models.Model):
    text = models.CharField(max_length=50)


# Declared while models load, before the app registry is ready: bound in ready().
invalidate("cacheapp.Note", keys=["note:{pk}:{text}"], tags=["notes"])


class Label(models.Model):
    """Linked by ``code``, not by pk: an m2m ``pk_set`` holds codes."""

    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=50, default="")


class Item(models.Model):
    name = models.CharField(max_length=50, default="")
    labels: models.ManyToManyField[Label, Any] = models.ManyToManyField(
        Label, through="ItemLabel", related_name="items"
    )


class ItemLabel(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE)
    label = models.ForeignKey(Label, to_field="code", on_delete=models.CASCADE)
