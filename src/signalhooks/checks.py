"""System checks: what cannot be checked when a hook is declared."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error

from .registry import registry


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
