"""One model per variant, all with the same columns, so only the hooks differ.

The signalhooks hooks, rules and counters of these models are declared in
``benchmarks/benchapp/hooks.py`` (autodiscovered, as in a project).
"""

from __future__ import annotations

import sys

from dirtyfields import DirtyFieldsMixin
from django.db import models
from django.db.models import F
from django.db.models.signals import post_init, post_save
from django.utils import timezone
from django_lifecycle import AFTER_SAVE, LifecycleModel
from django_lifecycle import hook as lifecycle_hook
from django_lifecycle.conditions import WhenFieldHasChanged as LCChanged
from model_utils import FieldTracker

from signalhooks import HooksQuerySet

#: django-lifecycle-hooks 1.0.2 imports ``typing.override``, new in Python 3.12.
LIFECYCLE_HOOKS = sys.version_info >= (3, 12)
LIFECYCLE_HOOKS_SKIP = (
    "django-lifecycle-hooks 1.0.2 needs Python 3.12+ (it imports typing.override); "
    f"this is Python {sys.version_info.major}.{sys.version_info.minor}"
)


class Base(models.Model):
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=20, default="new")
    score = models.IntegerField(default=0)

    class Meta:
        abstract = True


class Plain(Base):
    """No receivers at all: the baseline of every group."""


class Receiver(Base):
    """A hand-written, no-op ``post_save`` receiver."""


def receiver_hook(sender, instance, **kwargs):
    pass


post_save.connect(receiver_hook, sender=Receiver, dispatch_uid="bench-receiver")


class InitReceiver(Base):
    """A hand-written, no-op ``post_init`` receiver: the floor of signal-based tracking."""


def init_receiver(sender, instance, **kwargs):
    pass


post_init.connect(init_receiver, sender=InitReceiver, dispatch_uid="bench-init-receiver")


class Hooked(Base):
    """signalhooks: one unconditioned post_save hook."""


class HookedChanged(Base):
    """signalhooks: one post_save hook with changed="status"."""


class Tracked(Base):
    """signalhooks: two tracked fields (track()), no hook."""


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


if LIFECYCLE_HOOKS:
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
    """django-model-utils: a FieldTracker on the same two fields."""

    tracker = FieldTracker(fields=["name", "status"])


class Dirty(DirtyFieldsMixin, Base):
    """django-dirtyfields on the same two fields."""

    FIELDS_TO_CHECK = ["name", "status"]


class Post(models.Model):
    comment_count = models.IntegerField(default=0)
    updated_at = models.DateTimeField(null=True)


class Comment(models.Model):
    """signalhooks counter() + touch() on ``post``."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE)
    text = models.CharField(max_length=100)


class PlainComment(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="+")
    text = models.CharField(max_length=100)


class ReceiverComment(models.Model):
    """The same upkeep written by hand: a post_save receiver issuing one F() UPDATE."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="+")
    text = models.CharField(max_length=100)


def bump_post(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        Post.objects.filter(pk=instance.post_id).update(
            comment_count=F("comment_count") + 1, updated_at=timezone.now()
        )


post_save.connect(bump_post, sender=ReceiverComment, dispatch_uid="bench-bump-post")
