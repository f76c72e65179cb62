"""The signalhooks panel for django-debug-toolbar.

Per request: the hooks that ran (rules, counters and user receivers included) with their
time, the keys, tags and patterns invalidated and whether each flush succeeded, the
counters moved and the welcome mails queued. It listens through ``signalhooks.observe``
and ``cache_invalidated`` while the request runs, and only to the request's thread, so
concurrent requests of a threaded server do not mix.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from debug_toolbar.panels import Panel
from django.http import HttpRequest, HttpResponse
from django.template import Context, Engine

from signalhooks import observe
from signalhooks.invalidation import cache_invalidated

if TYPE_CHECKING:
    from django.db.models import Model

    from signalhooks.hooktypes import Hook

#: Its own engine: the panel works without being in INSTALLED_APPS.
_ENGINE = Engine(dirs=[str(Path(__file__).resolve().parent / "templates")])


class SignalhooksPanel(Panel):
    """Hooks, invalidations, counters and welcome mails of one request."""

    title = "signalhooks"
    nav_title = "signalhooks"
    template = "signalhooks/debug_toolbar/panel.html"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._thread = threading.get_ident()
        self._hooks: list[dict[str, Any]] = []
        self._flushes: list[dict[str, Any]] = []
        self._counters: list[dict[str, Any]] = []
        self._mails: list[str] = []
        self._failures: list[str] = []

    @property
    def nav_subtitle(self) -> str:
        stats = self.get_stats()
        hooks, keys = len(stats.get("hooks", ())), stats.get("invalidated", 0)
        return f"{hooks} hook run{'s' * (hooks != 1)}, {keys} invalidated"

    @property
    def content(self) -> str:
        return _ENGINE.get_template(self.template).render(Context(_context(self.get_stats())))

    # -- recording (the observer protocol of signalhooks.observe) ------------------------

    def _here(self) -> bool:
        return threading.get_ident() == self._thread

    def hook_ran(self, hook: Hook, kwargs: Mapping[str, Any], seconds: float) -> None:
        if self._here():
            pk = getattr(kwargs.get("instance"), "pk", None)
            self._hooks.append(
                {
                    "label": hook.label,
                    "kind": hook.kind,
                    "event": hook.event.value,
                    "model": kwargs["sender"]._meta.label,
                    "pk": "" if pk is None else str(pk),  # a pre_save of a new row has none
                    "ms": round(seconds * 1000, 3),
                }
            )

    def counters_moved(
        self, parent: type[Model], changes: Mapping[tuple[tuple[str, int], ...], Sequence[Any]]
    ) -> None:
        if self._here():
            for change, keys in changes.items():
                for name, delta in change:
                    self._counters.extend(
                        {"field": f"{parent._meta.label}.{name}", "pk": str(key), "delta": delta}
                        for key in keys
                    )

    def mail_queued(self, user_pk: Any) -> None:
        if self._here():
            self._mails.append(str(user_pk))

    def flush_failed(
        self, cache: str, keys: Sequence[str], tags: Sequence[str], patterns: Sequence[str]
    ) -> None:
        if self._here():
            kept = ", ".join(
                [*keys, *(f"tag {t}" for t in tags), *(f"pattern {p}" for p in patterns)]
            )
            self._failures.append(f"invalidating cache {cache!r} failed: {kept}")

    def _flushed(self, sender: str, **kwargs: Any) -> None:
        if self._here():
            self._flushes.append(
                {
                    "cache": sender,
                    "keys": list(kwargs["keys"]),
                    "tags": list(kwargs["tags"]),
                    "patterns": list(kwargs["patterns"]),
                }
            )

    def enable_instrumentation(self) -> None:
        self._thread = threading.get_ident()
        observe.add(self)
        cache_invalidated.connect(self._flushed, dispatch_uid=f"signalhooks.panel.{id(self)}")

    def disable_instrumentation(self) -> None:
        cache_invalidated.disconnect(dispatch_uid=f"signalhooks.panel.{id(self)}")
        observe.remove(self)

    def generate_stats(self, request: HttpRequest, response: HttpResponse) -> None:
        # Plain data only: the toolbar's store serialises the stats.
        self.record_stats(
            {
                "hooks": self._hooks,
                "flushes": self._flushes,
                "failures": self._failures,
                "counters": self._counters,
                "mails": self._mails,
                "invalidated": sum(
                    len(f["keys"]) + len(f["tags"]) + len(f["patterns"]) for f in self._flushes
                ),
            }
        )


def _context(stats: Mapping[str, Any]) -> dict[str, Any]:
    hooks = stats.get("hooks", [])
    return {**stats, "total_ms": round(sum(h["ms"] for h in hooks), 3)}
