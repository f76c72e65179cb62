from __future__ import annotations

import logging
from importlib import metadata

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.cache import cache
from django.db import transaction
from django.test import TestCase

from signalhooks import counter, invalidate, observe, post_save
from signalhooks.registry import registry
from signalhooks.testing import CounterMove, Flush, record_signalhooks
from tests.cacheapp.models import Entry
from tests.relatedapp.models import Post, Reply

pytestmark = pytest.mark.django_db


def test_record_runs_on_commit_invalidations_and_says_what_went(signalhooks_record):
    invalidate(Entry, keys=["entry:{slug}"], tags=["entries"])
    cache.set("entry:a", "cached")
    Entry.objects.create(title="A", slug="a")
    # The test's transaction never commits: without the record the key would stay.
    assert cache.get("entry:a") == "cached"
    signalhooks_record.assert_invalidated(keys=["entry:a"], tags=["entries"])
    assert cache.get("entry:a") is None
    assert signalhooks_record.flushes == [
        Flush(cache="default", keys=("entry:a",), tags=("entries",), patterns=())
    ]
    assert signalhooks_record.invalidated("keys", cache="locmem") == set()
    signalhooks_record.assert_not_invalidated(keys=["entry:b"], tags=["other"])
    with pytest.raises(AssertionError, match=r"did not invalidate keys \['entry:b'\]; it inv"):
        signalhooks_record.assert_invalidated(keys=["entry:b"])
    with pytest.raises(AssertionError, match=r"signalhooks invalidated tags \['entries'\]"):
        signalhooks_record.assert_not_invalidated(tags=["entries"])
    with pytest.raises(AssertionError, match="signalhooks invalidated: "):
        signalhooks_record.assert_nothing_invalidated()
    signalhooks_record.clear()
    signalhooks_record.assert_nothing_invalidated()


def test_record_says_what_a_failed_flush_kept_for_a_retry(signalhooks_record, flaky):
    server, _ = flaky
    invalidate(Entry, keys=["entry:{slug}"], tags=["entries"], cache="flaky")
    server.stop()
    Entry.objects.create(title="A", slug="a")  # the save succeeds, the flush does not
    assert signalhooks_record.failed_flushes == [
        Flush(cache="flaky", keys=("entry:a",), tags=("entries",), patterns=())
    ]
    assert signalhooks_record.flushes == []
    signalhooks_record.clear()
    assert signalhooks_record.failed_flushes == []


def test_record_sees_a_model_with_one_plain_hook(signalhooks_record):
    # One post_save hook and nothing else takes the registry's fast path.
    seen = []

    @post_save(Entry)
    def remember(sender, instance, **kwargs):
        seen.append(instance.slug)

    entry = Entry.objects.create(title="A", slug="a")
    entry.save()
    assert seen == ["a", "a"]
    assert [run.func for run in signalhooks_record.hooks] == [remember, remember]


def test_record_runs_on_commit_hooks_and_times_them(signalhooks_record):
    seen = []

    @post_save(Entry, on_commit=True)
    def after_commit(instance, **kwargs):
        seen.append(instance.slug)

    @post_save(Entry)
    def right_away(**kwargs):
        pass

    entry = Entry.objects.create(title="A", slug="a")
    assert seen == []
    signalhooks_record.assert_hook_ran(after_commit, times=1)
    assert seen == ["a"]
    signalhooks_record.assert_hook_ran(f"{right_away.__module__}.{right_away.__qualname__}")
    [run] = [r for r in signalhooks_record.hooks if r.func is after_commit]
    assert (run.kind, run.event, run.sender, run.instance) == ("hook", "post_save", Entry, entry)
    with pytest.raises(AssertionError, match=r"after_commit ran 1 time\(s\), not 2; what ran"):
        signalhooks_record.assert_hook_ran(after_commit, times=2)
    with pytest.raises(AssertionError, match=r"after_commit ran 1 time\(s\)(\n|$)"):
        signalhooks_record.assert_hook_not_ran(after_commit)
    signalhooks_record.clear()
    signalhooks_record.assert_hook_not_ran(after_commit)
    with pytest.raises(AssertionError, match="after_commit did not run; what ran: "):
        signalhooks_record.assert_hook_ran(after_commit)


def test_record_counts_counter_moves(signalhooks_record):
    counter(Reply, "post", "comment_count")
    post, other = Post.objects.create(), Post.objects.create()
    Reply.objects.create(post=post)
    reply = Reply.objects.create(post=post)
    signalhooks_record.assert_counter_moved(post, "comment_count", by=2)
    reply.post = other
    reply.save()
    signalhooks_record.assert_counter_moved(post, "comment_count", by=1)
    signalhooks_record.assert_counter_moved(Post, "comment_count", pk=other.pk, by=1)
    signalhooks_record.assert_counter_moved(Post, "comment_count", by=2)  # all rows
    assert CounterMove(Post, other.pk, "comment_count", 1) in signalhooks_record.counters
    with pytest.raises(AssertionError, match=rf"relatedapp.Post.comment_count of pk={post.pk}"):
        signalhooks_record.assert_counter_moved(post, "comment_count", by=3)


def test_record_counter_touch_only_is_no_move(signalhooks_record):
    from signalhooks import touch

    touch(Reply, "post", "updated_at")
    Reply.objects.create(post=Post.objects.create())
    assert signalhooks_record.counters == []


def test_record_welcome_mail_queued_and_sent(signalhooks_record):
    signalhooks_record.assert_no_mail_queued()
    user = User.objects.create_user("ada", "ada@example.com", "pw")
    signalhooks_record.assert_mail_queued(user)
    signalhooks_record.assert_mail_queued(to="ada@example.com")
    signalhooks_record.assert_mail_queued()
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]  # sent by the queued task
    with pytest.raises(AssertionError, match=r"no welcome mail was queued to 'bob@"):
        signalhooks_record.assert_mail_queued(to="bob@example.com")
    with pytest.raises(AssertionError, match="welcome mails were queued for users"):
        signalhooks_record.assert_no_mail_queued()
    bob = User(pk=999)
    with pytest.raises(AssertionError, match="no welcome mail was queued for user pk=999"):
        signalhooks_record.assert_mail_queued(bob)
    signalhooks_record.clear()
    with pytest.raises(AssertionError, match="^no welcome mail was queued(\n|$)"):
        signalhooks_record.assert_mail_queued()


def test_record_context_manager_runs_the_rest_on_exit():
    invalidate(Entry, keys=["entry:{slug}"])
    cache.set("entry:a", "cached")
    with record_signalhooks() as record:
        Entry.objects.create(title="A", slug="a")
        assert observe.observers == [record]
    assert cache.get("entry:a") is None  # ran when the block ended
    assert observe.observers == []  # nobody listens: the save path is back to one test
    Entry.objects.create(title="B", slug="b")
    assert record.invalidated("keys") == {"entry:a"}


@pytest.mark.django_db(transaction=True)
def test_record_after_a_real_commit_runs_nothing_twice():
    seen = []

    @post_save(Entry, on_commit=True)
    def after_commit(instance, **kwargs):
        seen.append(instance.slug)

    with record_signalhooks() as record:
        with transaction.atomic():
            Entry.objects.create(title="A", slug="a")
            assert seen == []
        assert seen == ["a"]  # Django ran it at the commit
        assert record.run_on_commit() == 0
        Entry.objects.create(title="B", slug="b")  # autocommit: runs at once
    assert seen == ["a", "b"]
    record.assert_hook_ran(after_commit, times=2)


def test_record_callbacks_robust_and_not(caplog):
    def boom():
        raise RuntimeError("boom")

    with record_signalhooks() as record:
        transaction.on_commit(boom, robust=True)
        with caplog.at_level(logging.ERROR, logger="signalhooks"):
            assert record.run_on_commit() == 1
        assert "on_commit callback" in caplog.text
        transaction.on_commit(boom)
        with pytest.raises(RuntimeError, match="boom"):
            record.run_on_commit()


class RecordInATestCase(TestCase):
    def test_context_manager_in_a_django_testcase(self):
        invalidate(Entry, tags=["entries"])
        with record_signalhooks() as record:
            Entry.objects.create(title="A", slug="a")
            record.assert_invalidated(tags=["entries"])


class RecordAfterSetUpTestDataAndSetUp(TestCase):
    """The transaction's batch was opened by setUpTestData and filled by setUp."""

    @classmethod
    def setUpClass(cls):
        rules = registry.isolated()
        rules.__enter__()
        # Gone after the class, also when its set-up fails.
        cls.addClassCleanup(rules.__exit__, None, None, None)
        invalidate(Entry, keys=["entry:{slug}"])
        super().setUpClass()

    @classmethod
    def setUpTestData(cls):
        Entry.objects.create(title="Data", slug="data")

    def setUp(self):
        Entry.objects.create(title="Set up", slug="setup")

    def test_record_holds_what_its_block_invalidated(self):
        with record_signalhooks() as record:
            record.assert_nothing_invalidated()
            Entry.objects.create(title="A", slug="a")
            record.assert_invalidated(keys=["entry:a"])
            with pytest.raises(AssertionError, match="signalhooks invalidated: "):
                record.assert_nothing_invalidated()
        assert record.invalidated("keys") == {"entry:a"}

    def test_record_read_only_at_the_end(self):
        with record_signalhooks() as record:
            Entry.objects.create(title="B", slug="b")
        record.assert_invalidated(keys=["entry:b"])
        record.assert_not_invalidated(keys=["entry:data", "entry:setup"])


@pytest.fixture
def entry_rule():
    seen = []

    invalidate(Entry, keys=["entry:{slug}"])
    post_save(Entry)(lambda instance, **kwargs: seen.append(instance.slug))
    return seen


@pytest.fixture
def entry(entry_rule):
    return Entry.objects.create(title="Data", slug="data")


def _record_holds_the_test_alone(record, seen):
    assert seen == ["data"]  # the fixture saved its row
    assert record.hooks == []  # ... before the test began
    record.assert_nothing_invalidated()
    Entry.objects.create(title="A", slug="a")
    record.assert_invalidated(keys=["entry:a"])
    record.assert_not_invalidated(keys=["entry:data"])
    assert [run.kind for run in record.hooks] == ["rule", "hook"]
    with pytest.raises(AssertionError, match="signalhooks invalidated: "):
        record.assert_nothing_invalidated()


def test_record_fixture_after_a_data_fixture(entry_rule, entry, signalhooks_record):
    _record_holds_the_test_alone(signalhooks_record, entry_rule)


def test_record_fixture_before_a_data_fixture(entry_rule, signalhooks_record, entry):
    _record_holds_the_test_alone(signalhooks_record, entry_rule)


def test_record_started_inside_a_transaction_with_a_batch(entry):
    with record_signalhooks() as record:
        Entry.objects.create(title="A", slug="a")
    assert record.invalidated("keys") == {"entry:a"}


def test_fixture_is_a_pytest_plugin_of_the_distribution():
    [plugin] = metadata.entry_points(group="pytest11", name="signalhooks")
    assert plugin.value == "signalhooks.testing"
    assert plugin.dist is not None and plugin.dist.name == "django-signalhooks"
