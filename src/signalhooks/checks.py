"""System checks: what cannot be checked when a hook is declared."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from .conf import DEFAULTS, SPECS, not_a_dict, user_settings
from .registry import registry


@register()
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report every ``SIGNALHOOKS`` key whose value is not of its type and range."""
    user = user_settings()
    if not isinstance(user, Mapping):
        return [Error(not_a_dict(user), id="signalhooks.E040")]
    errors: list[CheckMessage] = []
    for key, value in user.items():
        if key not in DEFAULTS:
            continue  # an unknown key stops start-up (conf) before checks run
        spec = SPECS[key]
        if not spec.valid(value):
            errors.append(
                Error(
                    f"SIGNALHOOKS[{key!r}] is {value!r}; it must be {spec.expects}.",
                    hint=f"Set SIGNALHOOKS[{key!r}] to {spec.expects}, or leave it out for "
                    f"the default, {DEFAULTS[key]!r}.",
                    id="signalhooks.E041",
                )
            )
        elif key == "CACHE" and value not in settings.CACHES:
            errors.append(
                Error(
                    f"SIGNALHOOKS['CACHE'] is {value!r}, which is not in settings.CACHES.",
                    hint=f"Define {value!r} in settings.CACHES, or set SIGNALHOOKS['CACHE'] to "
                    f"one of the configured aliases: {', '.join(map(repr, settings.CACHES))}.",
                    id="signalhooks.E041",
                )
            )
    return errors


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
