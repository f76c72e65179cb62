"""System checks: what cannot be checked when a hook is declared."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, register

from .registry import registry


@register()
def check_installed(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report hooks declared in a project that does not install the app (they never run).

    Registered when signalhooks is imported, not in ``ready()``: without the app in
    INSTALLED_APPS its ``ready()`` never runs, and neither would a check it registered.
    """
    hooks = registry.hooks()
    if registry.ready or not hooks:
        return []
    first = hooks[0]
    sender = first.sender if isinstance(first.sender, str) else first.sender._meta.label
    return [
        Error(
            f"{len(hooks)} hook(s) are declared (the first: {first.label} for {sender} at "
            f"{first.source}), but 'signalhooks' is not in INSTALLED_APPS: none of them "
            "will ever run.",
            hint="Add 'signalhooks' to INSTALLED_APPS.",
            id="signalhooks.E002",
        )
    ]


def check_hooks(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report lazy senders that never resolved and each hook's own checks."""
    errors: list[CheckMessage] = [
        Error(
            f"{what} is registered for {sender!r}, which is not an installed model.",
            hint="Check the spelling ('app_label.ModelName') and that the app is in "
            "INSTALLED_APPS.",
            obj=what,
            id="signalhooks.E001",
        )
        for sender, what in registry.unresolved
    ]
    for hook in registry.hooks():
        if hook.check is not None and hook.model is not None:
            errors.extend(hook.check(hook.model))
    return errors
