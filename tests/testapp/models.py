from __future__ import annotations

from typing import Any

from django.core.files.storage import InMemoryStorage
from django.db import models

from signalhooks import HooksQuerySet


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


class Town(models.Model):
    place_count = models.IntegerField(default=0)


class Place(models.Model):
    """A concrete parent: its hooks also run for Restaurant saves (multi-table)."""

    name = models.CharField(max_length=50)
    city = models.CharField(max_length=50, blank=True)
    town = models.ForeignKey(Town, null=True, blank=True, on_delete=models.SET_NULL)


class Restaurant(Place):
    serves = models.CharField(max_length=50, blank=True)


class Critic(models.Model):
    """An m2m to a multi-table child: a rule on Place sees these changes too."""

    name = models.CharField(max_length=50)
    reviewed = models.ManyToManyField(Restaurant, related_name="critics", blank=True)


class Document(models.Model):
    title = models.CharField(max_length=50, blank=True)
    attachment = models.FileField(upload_to="docs/", blank=True, storage=InMemoryStorage())
    data = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)


class OwnLoading(models.Model):
    """Overrides from_db and refresh_from_db: tracking must cooperate with both."""

    name = models.CharField(max_length=50)
    loaded_by_own_from_db = False
    refreshed_by_own_method = False

    @classmethod
    def from_db(cls, db: Any, field_names: Any, values: Any, **kwargs: Any) -> OwnLoading:
        instance = super().from_db(db, field_names, values, **kwargs)
        instance.loaded_by_own_from_db = True
        return instance

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        super().refresh_from_db(*args, **kwargs)
        self.refreshed_by_own_method = True


class OldLoading(models.Model):
    """Overrides from_db with the signature Django 6.1 deprecates (no ``fetch_mode``)."""

    name = models.CharField(max_length=50)
    data = models.JSONField(default=dict)
    loaded_by_own_from_db = False

    @classmethod
    def from_db(cls, db: Any, field_names: Any, values: Any) -> OldLoading:  # type: ignore[override]
        instance = super().from_db(db, field_names, values)
        instance.loaded_by_own_from_db = True
        return instance


class Seat(models.Model):
    """A composite primary key (Django 5.2+)."""

    pk = models.CompositePrimaryKey("row", "number")
    row = models.CharField(max_length=5)
    number = models.IntegerField()
    holder = models.CharField(max_length=50, blank=True)

    objects = HooksQuerySet.as_manager()
