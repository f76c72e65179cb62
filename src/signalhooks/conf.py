"""The ``SIGNALHOOKS`` setting: one dict, a default for every key."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    # Import every installed app's ``hooks`` module on start-up.
    "AUTODISCOVER": True,
    # Cache alias used by ``invalidate()`` and ``cached()`` when none is given.
    "CACHE": "default",
    # How many failed invalidations the retry store keeps per cache alias; past it the
    # next successful flush starts a new epoch instead (everything cached goes).
    "RETRY_LIMIT": 10_000,
    # Seconds to skip a cache after it failed (reads compute, invalidations are stored).
    "BREAKER_SECONDS": 5.0,
    # Seconds a cached() miss holds its lease: how long others wait for its value at most.
    "LEASE_TIMEOUT": 10.0,
    # Seconds a cached() miss waits for another caller's value before computing it too.
    "LEASE_WAIT": 3.0,
    # Seconds a tag generation lives after its last use (longer than the values under it).
    "GENERATION_TIMEOUT": 7 * 24 * 3600,
    # Seconds the last value of a key is kept for cached(..., stale=True) callers.
    "STALE_TIMEOUT": 600,
    # SCAN COUNT per round trip when invalidating patterns (django-redis).
    "PATTERN_SCAN_COUNT": 1000,
    # Replicas that must confirm each invalidation flush (Redis WAIT, django-redis) before
    # it counts as delivered; fewer in time and it is retried. 0 does not wait. Behind a
    # Sentinel: the number of replicas, so the one promoted has every flush.
    "WAIT_REPLICAS": 0,
    # Seconds a flush waits for WAIT_REPLICAS confirmations (below the socket timeout).
    "WAIT_TIMEOUT": 0.1,
    # Who keeps counters, totals and touches: "python" (signal hooks) or "database"
    # (triggers generated from the same declarations; PostgreSQL and SQLite).
    "CAPTURE": "python",
    # Send the built-in welcome mail on ``user_registered``.
    "WELCOME_MAIL": True,
    # Sender address of the welcome mail; ``None`` means DEFAULT_FROM_EMAIL.
    "WELCOME_MAIL_FROM": None,
    # Django 6.1+ ``MAILERS`` alias for the welcome mail; ``None`` means the default.
    "MAILER": None,
    # Site name shown in the welcome mail; ``None`` means the current Site's, else none.
    "SITE_NAME": None,
    # Scheme and host of links in mails ("https://example.com"); ``None`` means
    # "https://" + the current Site's domain, else links without a host.
    "SITE_URL": None,
    # Seconds after which a claimed, unfinished welcome mail counts as lost with its
    # worker and is sent again; 0 means any claim (only when no worker can be sending).
    "WELCOME_MAIL_CLAIM_TIMEOUT": 600,
    # Sends of one welcome mail before it stays failed (the first one included).
    "WELCOME_MAIL_MAX_ATTEMPTS": 4,
    # Seconds before the first automatic retry of a failed welcome mail; doubled each time.
    "WELCOME_MAIL_RETRY_DELAY": 300,
    # Tasks backend alias (django.tasks / django-tasks) that sends the welcome mail;
    # ``None`` sends it right after commit, without a task.
    "TASK_BACKEND": "default",
}


@dataclass(frozen=True, slots=True)
class Spec:
    """What one key takes: a phrase for messages and docs, and the test of a value."""

    expects: str
    valid: Callable[[Any], bool]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _boolean() -> Spec:
    return Spec("True or False", lambda value: isinstance(value, bool))


def _integer(low: int) -> Spec:
    return Spec(f"an integer >= {low}", lambda value: _is_int(value) and value >= low)


def _seconds(*, zero: bool) -> Spec:
    if zero:
        return Spec("a number of seconds >= 0", lambda v: _is_number(v) and v >= 0)
    return Spec("a number of seconds > 0", lambda v: _is_number(v) and v > 0)


def _text(*, none: bool) -> Spec:
    if none:
        return Spec(
            "a non-empty string or None", lambda v: v is None or (isinstance(v, str) and bool(v))
        )
    return Spec("a non-empty string", lambda value: isinstance(value, str) and bool(value))


def _is_site_url(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    url = urlsplit(value)
    return url.scheme in ("http", "https") and bool(url.netloc)


#: The type and range of every key, checked by the system check signalhooks.E041.
SPECS: dict[str, Spec] = {
    "AUTODISCOVER": _boolean(),
    "CACHE": _text(none=False),
    "RETRY_LIMIT": _integer(0),
    "BREAKER_SECONDS": _seconds(zero=True),
    "LEASE_TIMEOUT": _seconds(zero=False),
    "LEASE_WAIT": _seconds(zero=True),
    "GENERATION_TIMEOUT": _seconds(zero=False),
    "STALE_TIMEOUT": _seconds(zero=True),
    "PATTERN_SCAN_COUNT": _integer(1),
    "WAIT_REPLICAS": _integer(0),
    "WAIT_TIMEOUT": _seconds(zero=False),
    "WELCOME_MAIL": _boolean(),
    "WELCOME_MAIL_FROM": _text(none=True),
    "MAILER": _text(none=True),
    "SITE_NAME": _text(none=True),
    "SITE_URL": Spec(
        "None or a URL with scheme and host, e.g. 'https://example.com'", _is_site_url
    ),
    "WELCOME_MAIL_CLAIM_TIMEOUT": _seconds(zero=True),
    "WELCOME_MAIL_MAX_ATTEMPTS": _integer(1),
    "WELCOME_MAIL_RETRY_DELAY": _seconds(zero=True),
    "TASK_BACKEND": _text(none=True),
    "CAPTURE": Spec("'python' or 'database'", lambda value: value in ("python", "database")),
}


def user_settings() -> Any:
    """Return ``settings.SIGNALHOOKS`` as the project wrote it (``{}`` if unset)."""
    return getattr(settings, "SIGNALHOOKS", None) or {}


class Settings:
    """Read ``settings.SIGNALHOOKS`` merged over the defaults, cached until it changes.

    The merged values become instance attributes, so a read on the save path is a
    plain attribute look-up; ``__getattr__`` only runs on the first read after a change.
    """

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(name)
        self.__dict__.update(self._load())
        return self.__dict__[name]

    def _load(self) -> dict[str, Any]:
        user = user_settings()
        if not isinstance(user, Mapping):
            raise ImproperlyConfigured(not_a_dict(user))
        unknown = sorted(set(user) - set(DEFAULTS))
        if unknown:
            raise ImproperlyConfigured(
                f"SIGNALHOOKS has unknown key(s) {', '.join(map(repr, unknown))}; "
                f"valid keys are {', '.join(sorted(DEFAULTS))}."
            )
        return {**DEFAULTS, **user}

    def reset(self) -> None:
        self.__dict__.clear()


conf = Settings()


def not_a_dict(value: Any) -> str:
    """Return the error for a ``SIGNALHOOKS`` setting that is not a dict."""
    return (
        f"SIGNALHOOKS is a {type(value).__name__}; it must be a dict of settings, "
        "e.g. SIGNALHOOKS = {'CACHE': 'default', 'WELCOME_MAIL': False}."
    )


@receiver(setting_changed, dispatch_uid="signalhooks.conf.reset")
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "SIGNALHOOKS":
        conf.reset()
