"""Put signalhooks on every model of Django's own test apps.

Each concrete model gets (a) hooks on every event, with ``changed=`` naming all of its
concrete fields so change tracking (the ``from_db`` / ``refresh_from_db`` wrappers) is
on, and (b) an ``invalidate()`` rule with a key, a key per field, a tag and a pattern.
``runtests.py`` installs the test apps in a second ``apps.set_installed_apps()`` call,
which runs every ``ready()`` again: models already covered are skipped.
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.db.models import Model
from django_redis import get_redis_connection

import signalhooks

#: Redis hash of the hooks' calls by event (read by .ci/django_suite.py: they ran).
CALLS = "django-suite:hook-calls"
_covered: set[type[Model]] = set()


def _count(event: str) -> Any:
    def hook(sender: type[Model], instance: Model, **kwargs: Any) -> None:
        get_redis_connection("default").hincrby(CALLS, event, 1)

    hook.__name__ = hook.__qualname__ = f"everywhere_{event}"
    return hook


def cover(model: type[Model]) -> None:
    """Register the hooks and the rule on ``model`` (once)."""
    meta = model._meta
    if model in _covered or meta.abstract or meta.proxy or meta.swapped:
        return
    _covered.add(model)
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    names = tuple(f.name for f in fields)
    label = meta.label_lower
    signalhooks.pre_save(model, changed=names or None)(_count("pre_save"))
    signalhooks.post_save(model, changed=names or None)(_count("post_save"))
    signalhooks.post_save(model, on_commit=True)(_count("post_save_on_commit"))
    signalhooks.pre_delete(model)(_count("pre_delete"))
    signalhooks.post_delete(model)(_count("post_delete"))
    signalhooks.post_delete(model, on_commit=True)(_count("post_delete_on_commit"))
    signalhooks.invalidate(
        model,
        keys=[f"dj:{label}:{{pk}}", *(f"dj:{label}:{f.attname}:{{{f.attname}}}" for f in fields)],
        tags=[f"dj:{label}"],
        patterns=[f"dj:{label}:list:*"],
    )


class EverywhereConfig(AppConfig):
    name = "signalhooks_everywhere"
    label = "signalhooks_everywhere"

    def ready(self) -> None:
        for model in apps.get_models():
            cover(model)
