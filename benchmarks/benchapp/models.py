"""One model per variant, all with the same columns, so only the hooks differ."""

from __future__ import annotations

import sys

from dirtyfields import DirtyFieldsMixin
from django.db import models
from django.db.models.signals import post_save
from django_lifecycle import AFTER_SAVE, LifecycleModel
from django_lifecycle import hook as lifecycle_hook
from django_lifecycle.conditions import WhenFieldHasChanged as LCChanged
from model_utils import FieldTracker

from signalhooks import HooksQuerySet

LIFECYCLE_HOOKS = sys.version_info >= (3, 12)


class Base(models.Model):
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=20, default="new")
    score = models.IntegerField(default=0)

    class Meta:
        abstract = True


class Plain(Base):
    pass


class Receiver(Base):
    """A hand-written post_save receiver."""


def receiver_hook(sender, instance, **kwargs):
    pass


post_save.connect(receiver_hook, sender=Receiver, dispatch_uid="bench-receiver")


class Hooked(Base):
    """signalhooks: one unconditioned post_save hook (benchmarks/benchapp/hooks.py)."""


class HookedChanged(Base):
    """signalhooks: one post_save hook with changed="status"."""


class Tracked(Base):
    """signalhooks: two tracked fields, no hook."""


class Ruled(Base):
    """signalhooks: an invalidate() rule with keys and tags."""

    objects = HooksQuerySet.as_manager()


class Lifecycle(LifecycleModel, Base):
    @lifecycle_hook(AFTER_SAVE)
    def after_save(self):
        pass


class LifecycleChanged(LifecycleModel, Base):
    @lifecycle_hook(AFTER_SAVE, condition=LCChanged("status"))
    def after_status(self):
        pass


class LifecycleTracked(LifecycleModel, Base):
    """django-lifecycle tracks every field of every instance."""


if LIFECYCLE_HOOKS:  # django-lifecycle-hooks needs Python 3.12 (typing.override)
    from django_lifecycle_hooks import HookType, LifecycleModelMixin, WhenFieldHasChanged
    from django_lifecycle_hooks import hook as lch_hook

    class LCHooks(LifecycleModelMixin, Base):
        @lch_hook(HookType.AFTER_SAVE)
        def after_save(self, *args, **kwargs):
            pass

    class LCHooksChanged(LifecycleModelMixin, Base):
        @lch_hook(HookType.AFTER_SAVE, condition=WhenFieldHasChanged("status"))
        def after_status(self, *args, **kwargs):
            pass


class FieldTracked(Base):
    tracker = FieldTracker(fields=["name", "status"])


class Dirty(DirtyFieldsMixin, Base):
    FIELDS_TO_CHECK = ["name", "status"]


class Post(models.Model):
    comment_count = models.IntegerField(default=0)
    updated_at = models.DateTimeField(null=True)


class Comment(models.Model):
    """counter() + touch() on post."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE)
    text = models.CharField(max_length=100)


class PlainComment(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="+")
    text = models.CharField(max_length=100)
