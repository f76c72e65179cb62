"""Checking what a declaration was given: senders, ``changed=`` fields, a transition.

The decorators (:mod:`signalhooks.hooks`), the cache rules (:mod:`signalhooks.cache`)
and the related-record declarations (:mod:`signalhooks.related`) check their arguments
here, at declaration time, so a mistake fails at import with a message naming the
model, the field and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model

from .hooktypes import UNSET, Event, ModelRef, Transition
from .registry import registry
from .tracking import find_field

__all__ = ["DECORATORS", "Fields", "fields", "senders", "transition"]

Fields = str | Iterable[str] | None


DECORATORS = frozenset(event.value for event in Event)


def senders(decorator: str, senders: tuple[ModelRef, ...]) -> tuple[ModelRef, ...]:
    _installed(decorator)
    if not senders:
        raise TypeError(
            f"@{decorator}() needs at least one model: @{decorator}(Article) or "
            f'@{decorator}("blog.Article").'
        )
    for sender in senders:
        if isinstance(sender, str):
            if sender.count(".") != 1:
                raise TypeError(
                    f"@{decorator}({sender!r}): a lazy sender is written "
                    f'"app_label.ModelName", e.g. "auth.User".'
                )
            if apps.models_ready:
                _resolvable(decorator, sender)
        elif decorator in DECORATORS and callable(sender) and not isinstance(sender, type):
            # @post_save on its own line: Python passed the function as the sender.
            raise TypeError(
                f"@{decorator} needs its sender: write @{decorator}(MyModel) or "
                f'@{decorator}("app_label.MyModel") above '
                f"{getattr(sender, '__qualname__', sender)!s}, not a bare @{decorator}."
            )
        elif not (isinstance(sender, type) and issubclass(sender, Model)):
            raise TypeError(
                f"@{decorator}({sender!r}): {sender!r} is not a Django model. "
                f'Pass a model class or an "app_label.ModelName" string.'
            )
        elif sender._meta.abstract:
            raise TypeError(
                f"@{decorator}({sender.__name__}): {sender.__name__} is abstract and never "
                "sends signals. Hook its concrete subclasses instead."
            )
    return senders


def _shown(decorator: str) -> str:
    """Return how the user wrote ``decorator``: ``@post_save``, or ``invalidate``."""
    return f"@{decorator}" if decorator in DECORATORS else decorator


def _installed(decorator: str) -> None:
    """Refuse a declaration that would never run: the app's ready() never set the registry up."""
    if apps.ready and not registry.ready:
        raise ImproperlyConfigured(
            f"{_shown(decorator)}(...) is used, but 'signalhooks' is not in INSTALLED_APPS: "
            "no hook, rule or counter would ever run. Add 'signalhooks' to INSTALLED_APPS."
        )


def _resolvable(decorator: str, sender: str) -> None:
    """Refuse a lazy sender that names no model, now that every model is loaded."""
    try:
        apps.get_model(sender)
    except LookupError:
        labels = [model._meta.label for model in apps.get_models()]
        close = difflib.get_close_matches(sender, labels, n=1)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        raise ImproperlyConfigured(
            f"{_shown(decorator)}({sender!r}): no installed model is called {sender!r}{guess}. "
            "Name a model as 'app_label.ModelName' whose app is in INSTALLED_APPS."
        ) from None


def fields(decorator: str, senders: tuple[ModelRef, ...], changed: Fields) -> frozenset[str]:
    if isinstance(changed, Mapping):
        raise TypeError(
            f"@{decorator}(..., changed={changed!r}): changed= takes field names, not a "
            "dict. Say what the change must look like with keywords, e.g. "
            f"@{decorator}(Article, changed='status', was='draft', is_now='published')."
        )
    names = frozenset([changed] if isinstance(changed, str) else changed or ())
    for sender in senders:
        if isinstance(sender, str):
            continue  # checked when the lazy sender resolves
        for name in sorted(names):
            if find_field(sender, name) is None:
                valid = ", ".join(f.name for f in sender._meta.concrete_fields)
                raise ValueError(
                    f"@{decorator}({sender.__name__}, changed={name!r}): "
                    f"{sender._meta.label} has no field {name!r}. "
                    f"Use one of its concrete fields: {valid}."
                )
    return names


def transition(
    decorator: str, names: frozenset[str], conditions: dict[str, Any]
) -> Transition | None:
    given = {k: v for k, v in conditions.items() if v is not UNSET}
    if not given:
        return None
    shown = ", ".join(f"{k}={v!r}" for k, v in given.items())
    if not names:
        raise TypeError(
            f"@{decorator}(..., {shown}): a transition is the change of one field; "
            f"name it with changed=, e.g. @{decorator}(Article, changed='status', {shown})."
        )
    if len(names) > 1:
        listed = ", ".join(map(repr, sorted(names)))
        raise TypeError(
            f"@{decorator}(..., changed=[{listed}], {shown}): a transition is the change of "
            f"exactly one field, but changed= names {len(names)}. Keep the one field the "
            f"values belong to, e.g. @{decorator}(Article, changed='status', {shown}), and "
            "give the other fields a hook of their own."
        )
    changes_to = given.pop("changes_to", UNSET)
    if changes_to is not UNSET:
        for clash in ("is_now", "was_not"):
            if clash in given and given[clash] != changes_to:
                raise TypeError(
                    f"@{decorator}(..., changes_to={changes_to!r}, {clash}={given[clash]!r}): "
                    f"changes_to=X already means was_not=X and is_now=X; drop {clash}=."
                )
        given.update(is_now=changes_to, was_not=changes_to)
    (name,) = names
    return Transition(field=name, **given)
