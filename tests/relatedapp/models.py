from __future__ import annotations

from django.conf import settings
from django.db import models

from signalhooks import HooksQuerySet, counter


class Post(models.Model):
    title = models.CharField(max_length=100, default="")
    comment_count = models.IntegerField(default=0)
    approved_count = models.IntegerField(default=0)
    updated_at = models.DateTimeField(null=True)


class Reply(models.Model):
    post = models.ForeignKey(Post, null=True, on_delete=models.CASCADE, related_name="replies")
    approved = models.BooleanField(default=False)
    text = models.CharField(max_length=100, default="")

    objects = HooksQuerySet.as_manager()


class Topic(models.Model):
    vote_count = models.IntegerField(default=0)


class Vote(models.Model):
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE)

    objects = HooksQuerySet.as_manager()


# Declared while models load: validated by the system check, wired in ready().
counter(Vote, "topic", "vote_count")


class Team(models.Model):
    """An m2m to the user model that is not groups or permissions."""

    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True)
