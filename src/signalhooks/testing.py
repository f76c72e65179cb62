"""Test helpers: run on-commit work inside a test and see what signalhooks did.

In a test that runs inside a transaction (Django's ``TestCase``, pytest-django's
``db``), ``on_commit`` hooks, cache invalidations and welcome mails wait for a commit
that never comes. :func:`record_signalhooks` (a context manager) and the
``signalhooks_record`` pytest fixture run that work when you ask what happened, and
record the hooks that ran, the keys, tags and patterns invalidated, the counters moved
and the welcome mails queued::

    def test_comment(db, signalhooks_record, post):
        Comment.objects.create(post=post, body="hi")
        signalhooks_record.assert_invalidated(keys=[f"post:{post.slug}"], tags=["posts"])
        signalhooks_record.assert_counter_moved(post, "comment_count", by=1)

The fixture comes with signalhooks (a ``pytest11`` entry point); nothing to configure.
A record holds what its block (the test function, for the fixture) did, whenever the
transaction's batch of invalidations was opened and whatever the order of fixtures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import connections

from . import observe
from .batching import detach
from .invalidation import cache_invalidated
from .users import email_address

if TYPE_CHECKING:
    from django.db.models import Model

    from .hooktypes import Hook

logger = logging.getLogger("signalhooks")


@dataclass(frozen=True, slots=True)
class HookRun:
    """One hook, rule, counter or user receiver that ran."""

    label: str
    kind: str
    event: str
    func: Callable[..., Any]
    sender: type[Model]
    instance: Any
    seconds: float


@dataclass(frozen=True, slots=True)
class Flush:
    """What one flush invalidated on one cache (a ``cache_invalidated`` send)."""

    cache: str
    keys: tuple[str, ...]
    tags: tuple[str, ...]
    patterns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CounterMove:
    """A counter of one parent row moved by ``delta``."""

    model: type[Model]
    pk: Any
    field: str
    delta: int


@dataclass(eq=False)
class SignalhooksRecord:
    """What signalhooks did while recording; every read runs pending on-commit work first."""

    using: str = "default"
    _hooks: list[HookRun] = field(default_factory=list)
    _flushes: list[Flush] = field(default_factory=list)
    _failed: list[Flush] = field(default_factory=list)
    _counters: list[CounterMove] = field(default_factory=list)
    _mails: list[Any] = field(default_factory=list)
    _next_callback: int = 0

    # -- what was recorded ------------------------------------------------------------

    @property
    def hooks(self) -> list[HookRun]:
        self.run_on_commit()
        return list(self._hooks)

    @property
    def flushes(self) -> list[Flush]:
        self.run_on_commit()
        return list(self._flushes)

    @property
    def failed_flushes(self) -> list[Flush]:
        """What could not be invalidated (Redis down): kept in the retry store."""
        self.run_on_commit()
        return list(self._failed)

    @property
    def counters(self) -> list[CounterMove]:
        self.run_on_commit()
        return list(self._counters)

    @property
    def mails(self) -> list[Any]:
        """The primary keys of the users whose welcome mail was queued, in order."""
        self.run_on_commit()
        return list(self._mails)

    def invalidated(self, kind: str = "keys", cache: str | None = None) -> set[str]:
        """Return the ``keys``, ``tags`` or ``patterns`` flushed (on ``cache``, or any)."""
        return {
            value
            for flush in self.flushes
            if cache is None or flush.cache == cache
            for value in getattr(flush, kind)
        }

    def clear(self) -> None:
        """Run pending on-commit work, then forget everything recorded so far."""
        self.run_on_commit()
        self._forget()

    def _forget(self) -> None:
        for records in (self._hooks, self._flushes, self._failed, self._counters, self._mails):
            records.clear()

    def _start(self) -> None:
        """Record from now on: forget what came before and leave its on-commit work alone.

        The transaction's invalidation batch may have been opened before (by a
        ``setUpTestData``, a ``setUp``, a fixture): its callback is queued before the
        record's first one and never runs here, so the block's invalidations go to a
        batch of their own, whose callback the record runs.
        """
        self._forget()
        detach(self.using)
        self._next_callback = len(connections[self.using].run_on_commit)

    def run_on_commit(self) -> int:
        """Run the on-commit callbacks queued since the last call; return how many ran.

        Callbacks that queue more are followed. Run only in a transaction that will not
        commit (a test's): a transaction that commits would run them again.
        """
        connection = connections[self.using]
        queue: list[Any] = connection.run_on_commit  # (savepoint ids, callback, robust)
        ran = 0
        # A real commit or rollback empties the queue: start over from its new end.
        self._next_callback = min(self._next_callback, len(queue))
        while self._next_callback < len(queue):
            _, callback, robust = queue[self._next_callback]
            self._next_callback += 1
            ran += 1
            if not robust:
                callback()
                continue
            try:
                callback()
            except Exception:
                logger.exception("signalhooks: on_commit callback %r failed", callback)
        return ran

    # -- assertions -------------------------------------------------------------------

    def assert_invalidated(
        self,
        *,
        keys: Iterable[str] = (),
        tags: Iterable[str] = (),
        patterns: Iterable[str] = (),
        cache: str | None = None,
    ) -> None:
        """Assert that all of these keys, tags and patterns were invalidated."""
        for kind, wanted in (("keys", keys), ("tags", tags), ("patterns", patterns)):
            done = self.invalidated(kind, cache)
            missing = sorted(set(wanted) - done)
            assert not missing, (
                f"signalhooks did not invalidate {kind} {missing}; it invalidated {sorted(done)}"
            )

    def assert_not_invalidated(
        self,
        *,
        keys: Iterable[str] = (),
        tags: Iterable[str] = (),
        patterns: Iterable[str] = (),
        cache: str | None = None,
    ) -> None:
        """Assert that none of these keys, tags and patterns were invalidated."""
        for kind, unwanted in (("keys", keys), ("tags", tags), ("patterns", patterns)):
            done = sorted(set(unwanted) & self.invalidated(kind, cache))
            assert not done, f"signalhooks invalidated {kind} {done}"

    def assert_nothing_invalidated(self) -> None:
        """Assert that no flush happened."""
        assert not self.flushes, f"signalhooks invalidated: {self.flushes}"

    def assert_hook_ran(self, hook: Callable[..., Any] | str, *, times: int | None = None) -> None:
        """Assert that ``hook`` (the function, or its label) ran (exactly ``times`` times)."""
        runs = self._runs_of(hook)
        if times is None:
            assert runs, f"{_name(hook)} did not run; what ran: {self._ran()}"
        else:
            assert len(runs) == times, (
                f"{_name(hook)} ran {len(runs)} time(s), not {times}; what ran: {self._ran()}"
            )

    def assert_hook_not_ran(self, hook: Callable[..., Any] | str) -> None:
        """Assert that ``hook`` (the function, or its label) did not run."""
        runs = self._runs_of(hook)
        assert not runs, f"{_name(hook)} ran {len(runs)} time(s)"

    def assert_counter_moved(
        self, parent: Model | type[Model], field: str, *, by: int, pk: Any = None
    ) -> None:
        """Assert that ``parent``'s ``field`` moved by ``by`` in total.

        ``parent`` is a row (its pk is used) or a model with ``pk=``; a model alone sums
        the moves of all its rows.
        """
        from django.db.models import Model

        model = parent if isinstance(parent, type) else type(parent)
        if isinstance(parent, Model):
            pk = parent.pk
        moves = [
            move
            for move in self.counters
            if issubclass(model, move.model)
            and move.field == field
            and (pk is None or move.pk == pk)
        ]
        total = sum(move.delta for move in moves)
        where = f"{model._meta.label}.{field}" + ("" if pk is None else f" of pk={pk!r}")
        assert total == by, f"{where} moved by {total}, not {by}; counter moves: {self.counters}"

    def assert_mail_queued(self, user: Model | None = None, *, to: str | None = None) -> None:
        """Assert that a welcome mail was queued (for ``user``, or to the address ``to``)."""
        queued = self.mails
        if user is not None:
            assert str(user.pk) in map(str, queued), (
                f"no welcome mail was queued for user pk={user.pk!r}; queued: {queued}"
            )
        if to is not None:
            from django.contrib.auth import get_user_model

            users = get_user_model()._default_manager.filter(pk__in=queued)
            addresses = sorted(email_address(u) for u in users)
            assert to in addresses, f"no welcome mail was queued to {to!r}; queued: {addresses}"
        if user is None and to is None:
            assert queued, "no welcome mail was queued"

    def assert_no_mail_queued(self) -> None:
        """Assert that no welcome mail was queued."""
        assert not self.mails, f"welcome mails were queued for users {self.mails}"

    def _runs_of(self, hook: Callable[..., Any] | str) -> list[HookRun]:
        if isinstance(hook, str):
            return [run for run in self.hooks if run.label == hook]
        return [run for run in self.hooks if run.func is hook]

    def _ran(self) -> list[str]:
        return [run.label for run in self._hooks]

    # -- observer protocol (called by signalhooks while recording) --------------------

    def hook_ran(self, hook: Hook, kwargs: Mapping[str, Any], seconds: float) -> None:
        self._hooks.append(
            HookRun(
                label=hook.label,
                kind=hook.kind,
                event=hook.event.value,
                func=hook.func,
                sender=kwargs["sender"],
                instance=kwargs.get("instance"),
                seconds=seconds,
            )
        )

    def counters_moved(
        self, parent: type[Model], changes: Mapping[tuple[tuple[str, int], ...], Sequence[Any]]
    ) -> None:
        for change, keys in changes.items():
            for name, delta in change:
                self._counters.extend(CounterMove(parent, key, name, delta) for key in keys)

    def mail_queued(self, user_pk: Any) -> None:
        self._mails.append(user_pk)

    def flush_failed(
        self, cache: str, keys: Sequence[str], tags: Sequence[str], patterns: Sequence[str]
    ) -> None:
        self._failed.append(Flush(cache, tuple(keys), tuple(tags), tuple(patterns)))

    def flushed(self, sender: str, **kwargs: Any) -> None:
        self._flushes.append(
            Flush(
                cache=sender,
                keys=tuple(kwargs["keys"]),
                tags=tuple(kwargs["tags"]),
                patterns=tuple(kwargs["patterns"]),
            )
        )


def _name(hook: Callable[..., Any] | str) -> str:
    return hook if isinstance(hook, str) else getattr(hook, "__qualname__", repr(hook))


@contextmanager
def record_signalhooks(*, using: str = "default") -> Iterator[SignalhooksRecord]:
    """Record what signalhooks does in the block; run on-commit work on ``using``.

    The on-commit callbacks queued in the block run when a record is read (each
    property and assertion) and when the block ends. Outside a transaction they
    run at once, as always.
    """

    record = SignalhooksRecord(using=using)
    record._start()
    uid = f"signalhooks.testing.{id(record)}"
    cache_invalidated.connect(record.flushed, weak=False, dispatch_uid=uid)
    observe.add(record)
    try:
        yield record
        record.run_on_commit()
    finally:
        observe.remove(record)
        cache_invalidated.disconnect(dispatch_uid=uid)


try:
    import pytest
except ImportError:  # pragma: no cover - the context manager works without pytest
    pass
else:
    _RECORD = pytest.StashKey[SignalhooksRecord]()

    @pytest.fixture
    def signalhooks_record(request: pytest.FixtureRequest) -> Iterator[SignalhooksRecord]:
        """Record what signalhooks does in the test; run on-commit work when asked.

        The record holds what the test function did, whatever the order of its
        fixtures: what fixtures set up after this one did is forgotten when the test
        starts (:func:`pytest_runtest_call`).
        """
        with record_signalhooks() as record:
            request.node.stash[_RECORD] = record
            yield record

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(item: pytest.Item) -> None:
        """Start the test's record afresh once every fixture is set up."""
        record = item.stash.get(_RECORD, None)
        if record is not None:
            record._start()
