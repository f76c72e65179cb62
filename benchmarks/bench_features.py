"""Cache rules, counters and the welcome mail: what each costs, against doing it by hand.

Each group holds the allowance its target names as a variant of its own ("plain +
one round trip", "plain + one UPDATE"), measured in the same run, so the report
compares like with like. Redis round trips, queries, mails and rendered templates
are recorded in extra_info and checked, with timing on or off.
"""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.db import connection, transaction
from django.test import override_settings
from django.test.signals import template_rendered
from django.test.utils import CaptureQueriesContext
from tests.redis_counting import CountingConnection

from benchmarks import operations as ops
from benchmarks.benchapp import models as m
from benchmarks.interleave import interleaved_best, interleaved_ratio
from signalhooks import HooksQuerySet, cached

# on_commit work needs real commits: no test-wide transaction.
pytestmark = pytest.mark.django_db(transaction=True)

RULE = "signalhooks rule (keys+tags)"
PLUS_ROUND_TRIP = "plain + one round trip (by hand)"


def counting(operation):
    """Return ``operation`` wrapped to record the Redis round trips of each call."""
    trips: list[int] = []

    def counted():
        before = CountingConnection.round_trips
        operation()
        trips.append(CountingConnection.round_trips - before)

    return counted, trips


@pytest.mark.benchmark(group="100 saves in one transaction")
@pytest.mark.parametrize("variant", ["plain", PLUS_ROUND_TRIP, RULE])
def test_transaction_with_rule(benchmark, variant):
    model = m.Plain if variant != RULE else m.Ruled
    block, trips = counting(ops.hundred_saves(model, round_trip=variant == PLUS_ROUND_TRIP))
    cache.set_many({f"ruled:{pk}": "cached" for pk in model.objects.values_list("pk", flat=True)})
    block()
    assert trips == [0 if variant == "plain" else 1]
    if variant == RULE:  # what the user sees: every row's key is gone after the commit
        assert not cache.get_many([f"ruled:{pk}" for pk in m.Ruled.objects.values_list("pk")])
    benchmark(block)
    assert set(trips) == {trips[0]}
    benchmark.extra_info["redis_round_trips"] = trips[0]
    if not benchmark.disabled:
        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(
            ops.hundred_saves(m.Plain), block, rounds=15, number=1
        )


@pytest.mark.benchmark(group="autocommit save with a rule")
@pytest.mark.parametrize("variant", ["plain", PLUS_ROUND_TRIP, RULE])
def test_autocommit_save_with_rule(benchmark, variant):
    model = m.Plain if variant != RULE else m.Ruled
    save, trips = counting(ops.update_save(model, round_trip=variant == PLUS_ROUND_TRIP))
    pk = model.objects.get().pk
    cache.set(f"ruled:{pk}", "cached")
    save()
    assert trips == [0 if variant == "plain" else 1]
    assert cache.get(f"ruled:{pk}") is None or variant == "plain"
    benchmark(save)
    assert set(trips) == {trips[0]}
    benchmark.extra_info["redis_round_trips"] = trips[0]
    if benchmark.disabled:
        return
    if variant != RULE:
        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(
            ops.update_save(m.Plain), save, rounds=20
        )
        return
    # The wall-clock goal: what the rule adds to a plain save, in raw redis-py pipeline
    # round trips (the same commands by hand), all timed in turns. A pipeline right
    # after a save takes longer than one of a tight loop of pipelines (a server that
    # idled wakes up), so the same figure is also given against plain + that pipeline.
    plain, alone = ops.update_save(m.Plain), ops.one_round_trip([pk])
    by_hand = ops.update_save(m.Plain, round_trip=True)
    plain_time, round_trip, hand, rule = interleaved_best(plain, alone, by_hand, save, rounds=20)
    benchmark.extra_info["interleaved_ratio"] = rule / plain_time
    benchmark.extra_info["round_trips_above_plain"] = (rule - plain_time) / round_trip
    benchmark.extra_info["above_plain_vs_by_hand"] = (rule - plain_time) / (hand - plain_time)


COMMENT_VARIANTS = {
    # variant: (comment model, operation builder)
    "plain": (m.PlainComment, lambda post: ops.create_comment(m.PlainComment, post)),
    "plain + one UPDATE of the post (by hand)": (m.PlainComment, ops.create_comment_and_update),
    "django receiver (one UPDATE of the post)": (
        m.ReceiverComment,
        lambda post: ops.create_comment(m.ReceiverComment, post),
    ),
    "signalhooks counter + touch": (m.Comment, lambda post: ops.create_comment(m.Comment, post)),
}


@pytest.mark.benchmark(group="comment create")
@pytest.mark.parametrize("variant", COMMENT_VARIANTS)
def test_comment_create(benchmark, variant):
    post = m.Post.objects.create()
    model, build = COMMENT_VARIANTS[variant]
    create = build(post)
    with CaptureQueriesContext(connection) as queries:
        create()
    benchmark.extra_info["queries"] = len(queries)
    benchmark(create)
    # What the user sees: the post counts its comments and was touched.
    post.refresh_from_db()
    if variant == "plain":
        assert (post.comment_count, post.updated_at) == (0, None)
    else:
        assert post.comment_count == model.objects.filter(post=post).count() > 0
        assert post.updated_at is not None
    if not benchmark.disabled:
        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(
            ops.create_comment(m.PlainComment, post), create, rounds=20
        )


USER_VARIANTS = {
    "welcome mail off": {"WELCOME_MAIL": False},
    "welcome mail, immediate task": {},  # TASKS["default"]: the ImmediateBackend
    "welcome mail, queued task": {"TASK_BACKEND": "queued"},  # django-tasks-db
}


@pytest.mark.benchmark(group="user creation")
@pytest.mark.parametrize("variant", USER_VARIANTS)
def test_user_creation(benchmark, variant, unique):
    user_model = get_user_model()

    def create():
        user_model.objects.create_user(username=unique("u"), email="u@example.com")

    rendered: list[str] = []

    def record(sender, template, **kwargs):
        rendered.append(template.name)

    with override_settings(SIGNALHOOKS=USER_VARIANTS[variant]):
        # One creation, watched: what the request that creates a user pays.
        sent = len(mail.outbox)
        template_rendered.connect(record, dispatch_uid="bench-rendered")
        try:
            with CaptureQueriesContext(connection) as queries:
                create()
        finally:
            template_rendered.disconnect(dispatch_uid="bench-rendered")
        mails = len(mail.outbox) - sent
        benchmark.extra_info["queries"] = len(queries)
        benchmark.extra_info["mails_in_request"] = mails
        benchmark.extra_info["templates_in_request"] = len(rendered)
        if variant == "welcome mail, immediate task":
            assert mails == 1 and rendered  # rendered and sent right after the commit
        else:
            assert mails == 0 and not rendered  # nothing rendered or sent in the request
        benchmark(create)


QS_PLAIN_MANAGER = "HooksQuerySet, no rules"
QS_RULED = "signalhooks rule (HooksQuerySet.update)"
QS_LOOP = "signalhooks rule, 1,000 save() in one atomic()"


def qs_update(variant):
    """Return ``(model, update)``: each call sets the 1,000 rows' status to on/off in turn."""
    model = m.Ruled if variant in (QS_RULED, QS_LOOP) else m.Plain
    ops.fill(model, 1000)
    statuses = itertools.cycle(["on", "off"])
    if variant == QS_LOOP:
        rows = list(model.objects.all())

        def update():
            status = next(statuses)
            with transaction.atomic():
                for row in rows:
                    row.status = status
                    row.save()

        return model, update
    queryset = HooksQuerySet(model=m.Plain) if variant == QS_PLAIN_MANAGER else model.objects.all()
    return model, lambda: queryset.update(status=next(statuses))


@pytest.mark.benchmark(group="queryset update of 1,000 rows")
@pytest.mark.parametrize("variant", ["plain", QS_PLAIN_MANAGER, QS_RULED, QS_LOOP])
def test_queryset_update(benchmark, variant):
    model, update = qs_update(variant)
    counted, trips = counting(update)
    with CaptureQueriesContext(connection) as queries:
        counted()
    benchmark.extra_info["queries"] = len(queries)
    benchmark.extra_info["redis_round_trips"] = trips[0]
    assert trips[0] == (1 if model is m.Ruled else 0)
    if benchmark.disabled:
        benchmark(counted)
    else:
        benchmark.pedantic(counted, rounds=5 if variant == QS_LOOP else 30, warmup_rounds=1)
    assert model.objects.filter(status__in=["on", "off"]).count() == 1000
    if not benchmark.disabled and variant != QS_LOOP:
        if variant == "plain":
            plain = update  # against itself: the noise floor
        elif model is m.Plain:
            statuses = itertools.cycle(["on", "off"])
            plain = lambda: m.Plain.objects.update(status=next(statuses))  # noqa: E731
        else:
            plain = qs_update("plain")[1]
        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(
            plain, counted, rounds=15, number=1
        )


HIT_VALUE = "x" * 2048
HIT_VARIANTS = {
    "plain": lambda: cache.get("plain-hit"),  # django-redis cache.get of the same value
    "cached() hit, no tags": lambda: cached("page", lambda: HIT_VALUE, timeout=300),
    "cached() hit, 2 tags": lambda: cached(
        "tagged", lambda: HIT_VALUE, tags=["articles", "author:1"], timeout=300
    ),
}


def server_cpu_per_call(operation, calls=5000):
    """Return the Redis server's CPU seconds (user + sys, ``INFO cpu``) per call."""
    redis = cache.client.get_client(write=True)

    def used():
        info = redis.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    before = used()
    for _ in range(calls):
        operation()
    return (used() - before) / calls


@pytest.mark.benchmark(group="cached() hit")
@pytest.mark.parametrize("variant", HIT_VARIANTS)
def test_cached_hit(benchmark, variant):
    cache.set("plain-hit", HIT_VALUE, timeout=300)
    read = HIT_VARIANTS[variant]
    read()  # fill
    read()  # a hit: the tracking connection and the numbers are held from now on
    counted, trips = counting(read)
    counted()
    assert trips == [1]  # a hit, with or without tags, is one round trip
    assert read() == HIT_VALUE
    benchmark(read)
    if not benchmark.disabled:
        plain = HIT_VARIANTS["plain"]
        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(plain, read, rounds=20)
        cpu, base = server_cpu_per_call(read), server_cpu_per_call(plain)
        benchmark.extra_info["server_cpu_us_per_call"] = cpu * 1e6
        benchmark.extra_info["server_cpu_ratio"] = cpu / base
