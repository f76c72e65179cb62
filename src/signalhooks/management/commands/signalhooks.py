"""``manage.py signalhooks``: list every hook, rule, counter and total per model, and the
receivers of signalhooks' own signals."""

from __future__ import annotations

import json
import weakref
from argparse import ArgumentParser
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.dispatch import Signal

from signalhooks.capture.install import status
from signalhooks.capture.outbox import deliver, wait
from signalhooks.hooktypes import Event, Hook
from signalhooks.invalidation import cache_invalidated, pending_retries, send
from signalhooks.keys import Invalidation
from signalhooks.models import WelcomeMail
from signalhooks.registry import registry
from signalhooks.related import counted_models, kept_fields, recount
from signalhooks.tasks import retry_due
from signalhooks.users import user_deleted, user_registered, user_updated

_EVENT_ORDER = {event: index for index, event in enumerate(Event)}

#: The signals whose receivers are listed after the models, under ``signal:<name>``.
SIGNALS: dict[str, Signal] = {
    "user_registered": user_registered,
    "user_updated": user_updated,
    "user_deleted": user_deleted,
    "cache_invalidated": cache_invalidated,
}


def describe(hook: Hook) -> dict[str, Any]:
    """Return what ``manage.py signalhooks`` shows of ``hook``."""
    conditions: dict[str, Any] = {}
    if hook.created is not None:
        conditions["created"] = hook.created
    if hook.changed:
        conditions["changed"] = sorted(hook.changed)
    if hook.transition is not None:
        conditions.update(hook.transition.describe())
    if hook.m2m is not None:
        conditions.update(hook.m2m.describe())
    if hook.when is not None:
        conditions["when"] = getattr(hook.when, "__qualname__", repr(hook.when))
    if hook.raw:
        conditions["raw"] = True
    return {
        "event": hook.event.value,
        "kind": hook.kind,
        "name": hook.label,
        "conditions": conditions,
        "priority": hook.priority,
        "on_commit": hook.on_commit,
        "source": hook.source,
        **({"details": dict(hook.details)} if hook.details else {}),
    }


def _senders(name: str) -> dict[Any, str]:
    """Return ``{sender id: label}`` for the senders ``name`` is sent with.

    Django keys a receiver's sender by ``id(sender)`` (``id(None)``: any sender).
    """
    if name == "cache_invalidated":
        return {id(alias): repr(alias) for alias in settings.CACHES}
    model = get_user_model()
    return {id(model): model._meta.label}


def _source(func: Callable[..., Any]) -> str:
    code = getattr(func, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else ""


def receivers(name: str) -> list[dict[str, Any]]:
    """Describe the live receivers of signalhooks' signal ``name``, in the order they run.

    Read-only: a copy of the signal's receivers is taken under its lock, as Django does.
    """
    signal = SIGNALS[name]
    with signal.lock:
        entries = list(signal.receivers)
    senders = _senders(name)
    described = []
    for entry in entries:
        (_, sender_id), reference = entry[0], entry[1]
        # Weak receivers (the default) are references; weak=False ones the callable itself.
        func: Any = reference() if isinstance(reference, weakref.ReferenceType) else reference
        if func is None:  # collected, Django will drop it
            continue
        target = getattr(func, "__func__", func)
        qualname = getattr(target, "__qualname__", None)
        label = f"{target.__module__}.{qualname}" if qualname else repr(func)
        sender = "any" if sender_id == id(None) else senders.get(sender_id, "another object")
        described.append(
            {
                "event": name,
                "kind": "receiver",
                "name": label,
                "conditions": {"sender": sender},
                "source": _source(target),
            }
        )
    return described


def listing() -> dict[str, list[dict[str, Any]]]:
    """Return ``{model label: [hook description, ...]}`` in dispatch order, then
    ``{"signal:<name>": [receiver description, ...]}`` for each signal in SIGNALS."""
    by_model: dict[str, list[Hook]] = {}
    for hook in registry.hooks():
        label = hook.model._meta.label if hook.model is not None else f"{hook.sender} (unresolved)"
        by_model.setdefault(label, []).append(hook)
    models = {
        label: [
            describe(h) for h in sorted(hooks, key=lambda h: (_EVENT_ORDER[h.event], h.sort_key))
        ]
        for label, hooks in sorted(by_model.items())
    }
    signals = {f"signal:{name}": receivers(name) for name in SIGNALS}
    return models | {label: found for label, found in signals.items() if found}


class Command(BaseCommand):
    help = "List every hook, cache rule, counter and total per model."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON for machines.")
        actions = parser.add_subparsers(
            dest="action", metavar="{list,recount,welcome,flush,epoch,triggers,follow}"
        )
        actions.add_parser("list", help="List hooks per model (the default).")
        recount_parser = actions.add_parser(
            "recount",
            help="Recompute counters and totals from the database and report what was fixed.",
        )
        recount_parser.add_argument("models", nargs="*", metavar="app_label.Model")
        recount_parser.add_argument(
            "--database", default=None, help="Database alias (default: the router's choice)."
        )
        welcome_parser = actions.add_parser("welcome", help="Welcome mail delivery state.")
        welcome_parser.add_argument(
            "--retry",
            action="store_true",
            help="Send the welcome mails that are due: failed and due again, never queued, "
            "or claimed longer ago than WELCOME_MAIL_CLAIM_TIMEOUT.",
        )
        welcome_parser.add_argument(
            "--all",
            action="store_true",
            help="With --retry: also the failed mails not due yet or out of attempts.",
        )

        for name, text in (
            ("flush", "Send the failed cache invalidations waiting in the retry store."),
            ("epoch", "Start a new cache epoch: everything cached() stored goes."),
        ):
            cache_parser = actions.add_parser(name, help=text)
            cache_parser.add_argument(
                "--cache", action="append", help="Cache alias (default: every one in CACHES)."
            )

        triggers_parser = actions.add_parser(
            "triggers",
            help="List the database-capture triggers per table and whether they are current.",
        )
        triggers_parser.add_argument("--database", default="default", help="Database alias.")
        follow_parser = actions.add_parser(
            "follow",
            help="Deliver the cache invalidations the database's outbox recorded (database "
            "capture): LISTEN/NOTIFY on PostgreSQL, polling on SQLite.",
        )
        follow_parser.add_argument("--database", default="default", help="Database alias.")
        follow_parser.add_argument(
            "--once", action="store_true", help="Deliver what is pending, then exit."
        )
        follow_parser.add_argument(
            "--interval",
            type=float,
            default=1.0,
            help="Seconds between polls on SQLite; longest wait for a notification on "
            "PostgreSQL (default 1).",
        )
        follow_parser.add_argument(
            "--rounds",
            type=int,
            default=None,
            help="Stop after this many waits (default: run until stopped).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "follow":
            self.follow(
                options["database"],
                once=options["once"],
                interval=options["interval"],
                rounds=options["rounds"],
            )
            return
        if options["action"] == "triggers":
            self.triggers(options["database"])
            return
        if options["action"] in ("flush", "epoch"):
            self.flush(options["cache"], new_epoch=options["action"] == "epoch")
            return
        if options["action"] == "recount":
            self.recount(options["models"], using=options["database"])
            return
        if options["action"] == "welcome":
            self.welcome(retry=options["retry"], everything=options["all"])
            return
        self.list_hooks(as_json=options["json"])

    def follow(self, using: str, *, once: bool, interval: float, rounds: int | None) -> None:
        delivered = waits = 0
        while True:
            try:
                while count := deliver(using):
                    delivered += count
            except ImproperlyConfigured as error:
                raise CommandError(str(error)) from None
            if once or (rounds is not None and waits >= rounds):
                break
            wait(using, interval)
            waits += 1
        self.stdout.write(f"{delivered} change(s) delivered from the outbox of {using!r}.")

    def triggers(self, using: str) -> None:
        states = status(using)
        if not states:
            self.stdout.write(
                f'No signalhooks triggers on {using!r} (CAPTURE is not "database", '
                "or no counter(), total() or touch() is declared)."
            )
        for table in dict.fromkeys(state.table for state in states):
            self.stdout.write(self.style.MIGRATE_HEADING(table))
            for state in states:
                if state.table == table:
                    self.stdout.write(f"  {state.event or '-':<7} {state.name}  {state.state}")
        wrong = [state for state in states if state.state != "current"]
        if wrong:
            raise CommandError(
                f"{len(wrong)} trigger(s) on {using!r} not current: run manage.py migrate."
            )

    def welcome(self, *, retry: bool, everything: bool) -> None:
        failed = []
        if retry:
            for user_pk, status in retry_due(everything=everything).items():
                self.stdout.write(f"user {user_pk}: {status}")
                if status == WelcomeMail.Status.FAILED:
                    failed.append(user_pk)
        counts = Counter(WelcomeMail.objects.values_list("status", flat=True))
        summary = ", ".join(f"{status}={counts[status]}" for status in sorted(counts))
        self.stdout.write(f"welcome mails: {summary or 'none'}")
        if failed:
            # A non-zero exit: cron and schedulers report a run whose sends failed.
            raise CommandError(
                f"{len(failed)} welcome mail(s) failed again (user {', '.join(failed)}); "
                "see the log for the errors."
            )

    def flush(self, aliases: list[str] | None, *, new_epoch: bool) -> None:
        failed = []
        for alias in aliases or list(settings.CACHES):
            if alias not in settings.CACHES:
                raise CommandError(f"No cache {alias!r} in settings.CACHES.")
            waiting = pending_retries(alias)
            if not send(alias, Invalidation(), new_epoch=new_epoch):
                failed.append(alias)
                self.stderr.write(f"{alias}: unreachable; {pending_retries(alias)} still waiting")
                continue
            done = "new epoch, " if new_epoch else ""
            self.stdout.write(f"{alias}: {done}{waiting} failed invalidation(s) delivered")
        if failed:
            raise CommandError(f"Could not reach {', '.join(map(repr, failed))}.")

    def recount(self, labels: list[str], *, using: str | None) -> None:
        try:
            models = [apps.get_model(label) for label in labels] or counted_models()
        except (LookupError, ValueError) as error:
            raise CommandError(f"{error} Pass models as app_label.Model.") from None
        for model in models:
            fixed = recount(model, using=using)
            kinds = kept_fields(model)
            touches = sorted(name for name, kind in kinds.items() if kind == "touch")
            # Touches are times of the last change: nothing in the database to recount.
            untouched = f"; touches are not recounted: {', '.join(touches)}" if touches else ""
            if not fixed:
                self.stdout.write(f"{model._meta.label}: no counters or totals{untouched}")
                continue
            wrong = Counter({kind: 0 for kind in ("counter", "total") if kind in kinds.values()})
            for name, rows in fixed.items():
                wrong[kinds[name]] += len(rows)
            counts = " and ".join(f"{n} {kind} value(s)" for kind, n in wrong.items())
            self.stdout.write(f"{model._meta.label}: {counts} fixed{untouched}")
            for field, rows in fixed.items():
                for pk, (stored, correct) in sorted(rows.items(), key=lambda item: str(item[0])):
                    self.stdout.write(f"  pk={pk} {field}: {stored} -> {correct}")

    def list_hooks(self, *, as_json: bool) -> None:
        data = listing()
        if as_json:
            self.stdout.write(json.dumps(data, indent=2, default=str))
            return
        if not any(not label.startswith("signal:") for label in data):
            self.stdout.write("No hooks registered.")
        for label, hooks in data.items():
            self.stdout.write(self.style.MIGRATE_HEADING(label))
            for hook in hooks:
                if hook["kind"] == "receiver":
                    self.stdout.write(
                        f"  {hook['event']:<17} receiver {hook['name']}  "
                        f"[sender={hook['conditions']['sender']}]  {hook['source']}"
                    )
                    continue
                conditions = ", ".join(f"{k}={v!r}" for k, v in hook["conditions"].items())
                details = ", ".join(f"{k}={v!r}" for k, v in hook.get("details", {}).items())
                flags = [
                    f"priority={hook['priority']}",
                    *(["on_commit"] if hook["on_commit"] else []),
                    *([conditions] if conditions else []),
                    *([details] if details else []),
                ]
                self.stdout.write(
                    f"  {hook['event']:<12} {hook['kind']:<7} {hook['name']}  "
                    f"[{'; '.join(flags)}]  {hook['source']}"
                )
