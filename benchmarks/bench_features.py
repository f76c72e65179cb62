"""Cache rules, counters and the welcome mail: what each costs per operation."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from tests.redis_counting import CountingConnection

from benchmarks.benchapp import models as m
from benchmarks.interleave import interleaved_ratio, plain_update_save

pytestmark = pytest.mark.django_db(transaction=True)


def round_trips():
    return CountingConnection.round_trips


@pytest.mark.benchmark(group="100 saves in one transaction")
@pytest.mark.parametrize("variant", ["plain", "signalhooks rule (keys+tags)"])
def test_transaction_with_rule(benchmark, variant):
    model = m.Plain if variant == "plain" else m.Ruled
    rows = [model.objects.create(name=str(i)) for i in range(100)]
    sent = []

    def block():
        before = round_trips()
        with transaction.atomic():
            for row in rows:
                row.score += 1
                row.save()
        sent.append(round_trips() - before)

    benchmark(block)
    benchmark.extra_info["redis_round_trips"] = max(sent)
    assert set(sent) == ({0} if variant == "plain" else {1})
    if not benchmark.disabled:
        plain_rows = [m.Plain.objects.create(name=str(i)) for i in range(100)]

        def plain_block():
            with transaction.atomic():
                for row in plain_rows:
                    row.score += 1
                    row.save()

        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(
            plain_block, block, rounds=10, number=1
        )


@pytest.mark.benchmark(group="autocommit save with a rule")
@pytest.mark.parametrize("variant", ["plain", "signalhooks rule (keys+tags)"])
def test_autocommit_save_with_rule(benchmark, variant):
    model = m.Plain if variant == "plain" else m.Ruled
    row = model.objects.create(name="a")
    sent = []

    def save():
        before = round_trips()
        row.score += 1
        row.save()
        sent.append(round_trips() - before)

    benchmark(save)
    benchmark.extra_info["redis_round_trips"] = max(sent)
    assert set(sent) == ({0} if variant == "plain" else {1})
    if not benchmark.disabled:
        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(plain_update_save(), save)


@pytest.mark.benchmark(group="comment create")
@pytest.mark.parametrize("variant", ["plain", "signalhooks counter + touch"])
def test_comment_create(benchmark, variant):
    post = m.Post.objects.create()
    model = m.PlainComment if variant == "plain" else m.Comment
    with CaptureQueriesContext(connection) as queries:
        model.objects.create(post=post, text="x")
    benchmark.extra_info["queries"] = len(queries)
    assert len(queries) == (1 if variant == "plain" else 2)  # + one UPDATE of the post
    benchmark(lambda: model.objects.create(post=post, text="x"))
    if not benchmark.disabled:
        benchmark.extra_info["interleaved_ratio"] = interleaved_ratio(
            lambda: m.PlainComment.objects.create(post=post, text="x"),
            lambda: model.objects.create(post=post, text="x"),
        )


@pytest.mark.benchmark(group="user creation")
@pytest.mark.parametrize(
    "variant", ["welcome mail off", "welcome mail, immediate task", "welcome mail, queued task"]
)
def test_user_creation(benchmark, variant, unique):
    options = {
        "welcome mail off": {"WELCOME_MAIL": False},
        "welcome mail, immediate task": {},
        "welcome mail, queued task": {"TASK_BACKEND": "queued"},
    }[variant]
    with override_settings(SIGNALHOOKS=options):
        with CaptureQueriesContext(connection) as queries:
            User.objects.create(username=unique("u"), email="u@example.com")
        benchmark.extra_info["queries"] = len(queries)
        benchmark.extra_info["mails_in_request"] = len(mail.outbox)
        benchmark(lambda: User.objects.create(username=unique("u"), email="u@example.com"))
    sent = len(mail.outbox)
    # Immediate: sent right after commit; queued: nothing rendered or sent in the request.
    assert (sent > 0) == (variant == "welcome mail, immediate task")


@pytest.mark.benchmark(group="queryset update of 1,000 rows")
@pytest.mark.parametrize("variant", ["plain", "signalhooks rule (HooksQuerySet)"])
def test_queryset_update(benchmark, variant):
    model = m.Plain if variant == "plain" else m.Ruled
    model.objects.bulk_create([model(name=str(i)) for i in range(1000)])
    flip = iter(range(10**9))
    benchmark(lambda: model.objects.update(status=f"s{next(flip) % 2}"))
    assert model.objects.filter(status__startswith="s").count() == 1000
