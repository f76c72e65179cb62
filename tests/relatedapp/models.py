from __future__ import annotations

import django
from django.conf import settings
from django.db import models

from signalhooks import HooksQuerySet, counter, touch


class Post(models.Model):
    title = models.CharField(max_length=100, default="")
    comment_count = models.PositiveIntegerField(default=0)
    approved_count = models.IntegerField(default=0)
    quote_count = models.IntegerField(default=0)
    updated_at = models.DateTimeField(null=True)


class Reply(models.Model):
    post = models.ForeignKey(Post, null=True, on_delete=models.CASCADE, related_name="replies")
    quoted = models.ForeignKey(Post, null=True, on_delete=models.SET_NULL, related_name="quotes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    approved = models.BooleanField(default=False)
    text = models.CharField(max_length=100, default="")

    objects = HooksQuerySet.as_manager()


class ReplyProxy(Reply):
    class Meta:
        proxy = True


class Topic(models.Model):
    vote_count = models.IntegerField(default=0)
    voted_at = models.DateTimeField(null=True)


# Declared while models load, before Vote exists: resolved when it is registered.
touch("relatedapp.Vote", "topic", "voted_at")


class Vote(models.Model):
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE)

    objects = HooksQuerySet.as_manager()


# Declared while models load: validated by the system check, wired in ready().
counter(Vote, "topic", "vote_count")


class Tag(models.Model):
    """A parent keyed by slug, with a nullable counter and a DateField to touch."""

    slug = models.SlugField(unique=True)
    use_count = models.IntegerField(null=True)
    used_on = models.DateField(null=True)


class Tagging(models.Model):
    tag = models.ForeignKey(Tag, to_field="slug", on_delete=models.CASCADE)
    note = models.CharField(max_length=100, default="")

    objects = HooksQuerySet.as_manager()


class Content(models.Model):
    comment_count = models.IntegerField(default=0)


class Page(Content):
    """Multi-table inheritance: the counter lives on the ancestor's table."""

    title = models.CharField(max_length=100, default="")


class Note(models.Model):
    page = models.ForeignKey(Page, null=True, on_delete=models.CASCADE)

    objects = HooksQuerySet.as_manager()


class Team(models.Model):
    """An m2m to the user model that is not groups or permissions."""

    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True)


class Order(models.Model):
    """A parent with totals: a decimal sum, a nullable integer sum, a float sum."""

    note = models.CharField(max_length=100, default="")
    total = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    paid_total = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    quantity = models.IntegerField(null=True)
    weight = models.FloatField(default=0)
    line_count = models.IntegerField(default=0)
    updated_at = models.DateTimeField(null=True)


class Product(models.Model):
    name = models.CharField(max_length=100, default="")
    sold = models.PositiveIntegerField(default=0)


class Line(models.Model):
    order = models.ForeignKey(Order, null=True, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, null=True, on_delete=models.CASCADE)
    amount = models.DecimalField(max_digits=10, decimal_places=2, null=True)
    quantity = models.IntegerField(default=1)
    weight = models.FloatField(null=True)
    paid = models.BooleanField(default=False)
    note = models.CharField(max_length=100, default="")

    objects = HooksQuerySet.as_manager()


if django.VERSION >= (6, 1):

    class Remark(models.Model):
        """A child deleted by the database itself when its post goes (DB_CASCADE)."""

        post = models.ForeignKey(Post, on_delete=models.DB_CASCADE, related_name="remarks")
