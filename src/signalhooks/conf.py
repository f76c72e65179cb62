"""The ``SIGNALHOOKS`` setting: one dict, a default for every key."""

from __future__ import annotations

from typing import Any

from django.conf import settings
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
        user: dict[str, Any] = getattr(settings, "SIGNALHOOKS", {}) or {}
        unknown = sorted(set(user) - set(DEFAULTS))
        if unknown:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                f"SIGNALHOOKS has unknown key(s) {', '.join(map(repr, unknown))}; "
                f"valid keys are {', '.join(sorted(DEFAULTS))}."
            )
        return {**DEFAULTS, **user}

    def reset(self) -> None:
        self.__dict__.clear()


conf = Settings()


@receiver(setting_changed, dispatch_uid="signalhooks.conf.reset")
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "SIGNALHOOKS":
        conf.reset()
