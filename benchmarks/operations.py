"""The operations the suite times, shared by the pytest-benchmark files and instructions.py.

Each builder sets up what it needs and returns a no-argument callable doing one
operation (one save, one load of every row, one block of 100 saves …).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from benchmarks.benchapp import models as m

Operation = Callable[[], object]

#: model per variant of the save groups (update, create, delete), in chart order.
SAVE_VARIANTS: dict[str, type | None] = {
    "plain": m.Plain,
    "django receiver": m.Receiver,
    "signalhooks hook": m.Hooked,
    "signalhooks changed=": m.HookedChanged,
    "signalhooks 2 tracked fields": m.Tracked,
    "django-lifecycle": m.Lifecycle,
    "django-lifecycle changed": m.LifecycleChanged,
    "django-lifecycle-hooks": getattr(m, "LCHooks", None),
    "django-lifecycle-hooks changed": getattr(m, "LCHooksChanged", None),
    "model-utils FieldTracker": m.FieldTracked,
    "dirtyfields": m.Dirty,
}
#: model per variant of the load group: what each costs a SELECT of 10,000 rows.
LOAD_VARIANTS: dict[str, type | None] = {
    "plain": m.Plain,
    "django receiver": m.Receiver,
    "django post_init receiver (no-op)": m.InitReceiver,
    "signalhooks hook": m.Hooked,
    "signalhooks 2 tracked fields": m.Tracked,
    "django-lifecycle": m.Lifecycle,
    "django-lifecycle-hooks": getattr(m, "LCHooks", None),
    "model-utils FieldTracker": m.FieldTracked,
    "dirtyfields": m.Dirty,
}
LOAD_ROWS = 10_000


def skip_reason(model: type | None) -> str | None:
    """Return why a variant cannot run here (``None`` when it can)."""
    if model is None:
        return m.LIFECYCLE_HOOKS_SKIP
    return None


def update_save(model, *, round_trip: bool = False) -> Operation:
    """Return an update save of one loaded row (the hot path: one field changes).

    ``round_trip=True`` sends :func:`one_round_trip` for the row after each save.
    """
    row = model.objects.create(name="a")
    row = model.objects.get(pk=row.pk)
    after = one_round_trip([row.pk]) if round_trip else None

    def save() -> None:
        row.score += 1
        row.save()
        if after is not None:
            after()

    return save


def update_save_changing(model) -> Operation:
    """Return an update save of one loaded row whose ``status`` changes every time."""
    row = model.objects.create(name="a")
    row = model.objects.get(pk=row.pk)
    statuses = ("new", "old")

    def save() -> None:
        row.score += 1
        row.status = statuses[row.score % 2]
        row.save()

    return save


def create_save(model) -> Operation:
    return lambda: model.objects.create(name="a")


def delete_pool(model, count: int) -> Operation:
    """Return a delete of one row, from ``count`` rows created now."""
    pool = [model(name="a") for _ in range(count)]
    for row in pool:
        row.save()

    def delete() -> None:
        pool.pop().delete()

    return delete


def fill(model, rows: int = LOAD_ROWS) -> None:
    model.objects.bulk_create(
        [model(name=f"n{i}", status="new", score=i) for i in range(rows)], batch_size=1000
    )


def load(model) -> Operation:
    return lambda: list(model.objects.all())


def hundred_saves(model, *, round_trip: bool = False) -> Operation:
    """Return 100 update saves in one ``atomic()`` block.

    ``round_trip=True`` sends :func:`one_round_trip` for the 100 rows after the block.
    """
    rows = [model.objects.create(name=str(i)) for i in range(100)]
    after = one_round_trip([row.pk for row in rows]) if round_trip else None

    def block() -> None:
        with transaction.atomic():
            for row in rows:
                row.score += 1
                row.save()
        if after is not None:
            after()

    return block


def one_round_trip(pks: Iterable[object], status: str = "new") -> Operation:
    """Return what the Ruled rule sends for rows ``pks``, written by hand: one round trip.

    The same commands (one DEL of every ``ruled:{pk}`` key and ``ruled:list``, one
    INCR per tag) through the same django-redis connection, in one pipeline, with
    none of the bookkeeping: the "+ one round trip" of the targets.
    """
    from django.core.cache import cache
    from django_redis import get_redis_connection

    redis = get_redis_connection("default")
    keys = [cache.make_key(k) for k in [*(f"ruled:{pk}" for pk in pks), "ruled:list"]]
    tags = [cache.make_key(f"bench-tag:{t}") for t in ("ruled", f"status:{status}")]

    def send() -> None:
        pipeline = redis.pipeline(transaction=False)
        pipeline.delete(*keys)
        for tag in tags:
            pipeline.incr(tag)
        pipeline.execute()

    return send


def create_comment(model, post) -> Operation:
    return lambda: model.objects.create(post=post, text="x")


def create_comment_and_update(post) -> Operation:
    """A plain comment create plus the one UPDATE of the post: the counter's allowance."""

    def both() -> None:
        m.PlainComment.objects.create(post=post, text="x")
        m.Post.objects.filter(pk=post.pk).update(
            comment_count=F("comment_count") + 1, updated_at=timezone.now()
        )

    return both
