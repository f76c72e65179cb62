"""Database capture: the committing process delivers its own transaction's outbox rows
right after COMMIT, merged with what Python saw; ``follow`` delivers everything else."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from django.core.cache import caches
from django.db import connection, transaction
from django.db.models import QuerySet
from django.test import override_settings

from signalhooks import cache_invalidated, invalidate
from signalhooks.capture.install import install
from signalhooks.capture.own import Own, attach
from tests.cache_helpers import fill, present
from tests.relatedapp.models import Post, Topic
from tests.test_capture import DATABASE, POSTGRES, _target
from tests.test_capture_outbox import RAW, follow, outbox, outbox_rows

__all__ = ["outbox"]  # the fixture

pytestmark = pytest.mark.django_db(transaction=True)


def plain(model):
    """A plain queryset: no HooksQuerySet, nothing Python sees."""
    return QuerySet(model=model)


def keys_of(post, *titles):
    return [f"post:{post.pk}", *(f"post:title:{title}" for title in titles)]


def stale(keys):
    caches["default"].set_many(dict.fromkeys(keys, "stale"))


def cached(keys):
    return set(caches["default"].get_many(keys))


def wrappers():
    return [wrapper for wrapper in connection.execute_wrappers if isinstance(wrapper, Own)]


def test_a_plain_update_in_autocommit_is_invalidated_before_it_returns(outbox, round_trips):
    post = Post.objects.create(title="old")
    # The create: delivered by the process itself (SQLite: at the next statement, as an
    # INSERT ... RETURNING commits only once its rows are read).
    assert outbox_rows() == 0
    keys = keys_of(post, "old", "new")
    stale(keys)
    before = round_trips()
    assert plain(Post).filter(pk=post.pk).update(title="new") == 1
    assert round_trips() - before == 1
    assert cached(keys) == set()
    assert outbox_rows() == 0
    assert "0 change(s) delivered" in follow("--once")


def test_inside_atomic_after_commit_in_one_round_trip_with_what_python_saw(outbox, round_trips):
    a, b = Post.objects.create(title="old"), Post.objects.create(title="b")
    assert outbox_rows() == 0
    keys = [*keys_of(a, "old", "new"), *keys_of(b, "b", "b2"), "post:title:c"]
    stale(keys)
    with transaction.atomic():
        plain(Post).filter(pk=a.pk).update(title="new")
        b.title = "b2"
        b.save()  # Python sees this one, the outbox records it too: sent once
        plain(Post).create(title="c")
        assert outbox_rows() == 3  # the transaction sees its own rows
        assert cached(keys) == set(keys)  # nothing sent before COMMIT
        before = round_trips()
    assert cached(keys) == set()
    assert round_trips() - before == 1 + 1  # the flush, and the check just above
    assert outbox_rows() == 0


def test_a_rolled_back_transaction_delivers_nothing_and_leaves_no_rows(outbox, round_trips):
    post = Post.objects.create(title="old")
    assert outbox_rows() == 0
    keys = keys_of(post, "old", "new")
    stale(keys)
    before = round_trips()
    with pytest.raises(RuntimeError), transaction.atomic():
        plain(Post).filter(pk=post.pk).update(title="new")
        raise RuntimeError
    assert round_trips() == before
    assert cached(keys) == set(keys)
    assert outbox_rows() == 0


def test_rows_of_another_process_are_left_for_follow(outbox):
    a, b = Post.objects.create(title="old"), Post.objects.create(title="b")
    assert outbox_rows() == 0
    subprocess.run(
        [sys.executable, "-c", RAW, connection.vendor, _target(), str(a.pk)],
        check=True,
        timeout=60,
    )
    theirs, ours = keys_of(a, "old", "new"), keys_of(b, "b", "b2")
    stale([*theirs, *ours])
    plain(Post).filter(pk=b.pk).update(title="b2")
    assert cached(ours) == set()
    assert cached(theirs) == set(theirs)
    assert outbox_rows() == 3  # the other program's update, insert and counter move
    assert "3 change(s) delivered" in follow("--once")
    assert cached(theirs) == set()


def test_redis_down_at_commit_the_write_succeeds_and_follow_delivers(outbox, flaky):
    server, backend = flaky
    invalidate(Post, keys=["post:{pk}"], cache="flaky")
    with override_settings(SIGNALHOOKS={**DATABASE, "BREAKER_SECONDS": 0}):
        post = Post.objects.create(title="old")
        assert outbox_rows() == 0
        server.stop()
        assert plain(Post).filter(pk=post.pk).update(title="new") == 1
        assert Post.objects.get(pk=post.pk).title == "new"
        assert outbox_rows() == 1  # not sent everywhere: kept for follow
        server.start()  # same port, empty: put the stale key back
        fill(f"post:{post.pk}", backend=backend)
        assert "1 change(s) delivered" in follow("--once")
        assert present(f"post:{post.pk}", backend=backend) == set()
        assert outbox_rows() == 0


def test_a_row_whose_delivery_keeps_failing_is_dropped_and_logged(outbox, caplog):
    with connection.cursor() as cursor:
        # A primary key no field can read: handing it to the rules raises every time.
        cursor.execute(
            "INSERT INTO signalhooks_outbox (model, old, new) "
            "VALUES ('relatedapp.Post', NULL, '{\"id\": \"x\"}')"
        )
    assert outbox_rows() == 1  # the process's own delivery failed: left for follow
    assert "0 change(s) delivered" in follow("--rounds", "3", "--interval", "0")
    assert outbox_rows() == 1  # retried 4 times by now
    with caplog.at_level(logging.ERROR, logger="signalhooks"):
        assert "1 change(s) delivered" in follow("--once")
    assert outbox_rows() == 0
    assert "dropped 1 outbox row(s) whose delivery failed 5 times" in caplog.text


def test_writes_go_on_without_an_outbox_table(outbox):
    try:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE signalhooks_outbox")
        Topic.objects.create()  # before migrate created it: nothing to deliver
        with transaction.atomic():
            Topic.objects.create()
            Topic.objects.create()
        with transaction.atomic():
            Topic.objects.create()
        assert Topic.objects.count() == 4
    finally:
        install("default")
    with transaction.atomic():
        Topic.objects.create()
        with connection.cursor() as cursor:  # gone by the time it is read, after COMMIT
            cursor.execute("DROP TABLE signalhooks_outbox")
    install("default")
    assert Topic.objects.count() == 5


def test_removing_delivered_rows_may_fail_without_failing_the_write(outbox):
    def drop(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS signalhooks_outbox")

    cache_invalidated.connect(drop, weak=False, dispatch_uid="test_capture_own.drop")
    try:
        Post.objects.create(title="a")  # sent, then the DELETE of its row fails
    finally:
        cache_invalidated.disconnect(dispatch_uid="test_capture_own.drop")
        install("default")
    assert Post.objects.get().title == "a"


def test_the_wrapper_exists_in_database_mode_only(outbox, round_trips):
    assert len(wrappers()) == 1
    connection.close()
    Topic.objects.create()  # a new connection: still one wrapper
    attach(connection)
    assert len(wrappers()) == 1
    before = round_trips()
    with transaction.atomic():
        Topic.objects.create()  # no outbox rows: nothing to send
    assert round_trips() == before
    with override_settings(SIGNALHOOKS={"CAPTURE": "python"}):
        assert wrappers() == []
        assert connection.execute_wrappers == []


def test_a_transaction_managed_by_hand_is_delivered_after_it(outbox):
    post = Post.objects.create(title="old")  # SQLite: delivered at the next statement...
    keys = keys_of(post, "old", "new")
    stale(keys)
    transaction.set_autocommit(False)
    try:
        plain(Post).filter(pk=post.pk).update(title="new")  # ...not inside this one
        transaction.commit()
    finally:
        transaction.set_autocommit(True)
    if POSTGRES:  # no after-commit to deliver it in: follow's
        assert outbox_rows() == 1
        assert "1 change(s) delivered" in follow("--once")
    else:  # the create's delivery, after the COMMIT, took the update's row along
        assert outbox_rows() == 0
    assert cached(keys) == set()
