"""Database capture's outbox: invalidations of writes Python never saw, delivered by
``manage.py signalhooks follow``, at least once, and never lost to a crash after COMMIT."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import override_settings

from signalhooks import counter, invalidate
from signalhooks.capture.install import install, status
from signalhooks.capture.outbox import deliver
from tests.relatedapp.models import Post, Reply
from tests.test_capture import DATABASE, POSTGRES, _target

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def outbox():
    invalidate(Post, keys=["post:{pk}", "post:title:{title}"])
    counter(Reply, "post", "comment_count")
    with override_settings(SIGNALHOOKS=DATABASE):
        install("default")
        while deliver("default"):  # what earlier tests left (the table outlives them)
            pass
        yield
    install("default")


def follow(*args):
    out = StringIO()
    call_command("signalhooks", "follow", *args, stdout=out)
    return out.getvalue()


def outbox_rows():
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM signalhooks_outbox")
        return cursor.fetchone()[0]


RAW = """
import sys
vendor, target, post = sys.argv[1], sys.argv[2], int(sys.argv[3])
if vendor == "sqlite":
    import sqlite3
    db, mark = sqlite3.connect(target), "?"
else:
    import psycopg
    db, mark = psycopg.connect(target), "%s"
cur = db.cursor()
cur.execute(f"UPDATE relatedapp_post SET title = 'new' WHERE id = {mark}", (post,))
cur.execute(f"INSERT INTO relatedapp_reply (post_id, approved, text) VALUES ({mark}, {mark}, 'x')",
            (post, False))
db.commit()
cur.execute(f"UPDATE relatedapp_post SET title = 'rolled back' WHERE id = {mark}", (post,))
db.rollback()
db.close()
"""


def test_outbox_triggers_are_listed_and_current(outbox):
    events = {s.table: set() for s in status("default")}
    for state in status("default"):
        assert state.state == "current"
        events[state.table].add(state.event)
    # Post has rules; Reply's counter moves a Post.
    assert events["relatedapp_post"] == {"INSERT:outbox", "UPDATE:outbox", "DELETE:outbox"}
    assert {"INSERT:outbox", "INSERT"} <= events["relatedapp_reply"]


def test_follow_delivers_another_programs_writes_once(outbox):
    post = Post.objects.create(title="old")
    follow("--once")  # what the test's own writes recorded
    cache = caches["default"]
    keys = [f"post:{post.pk}", "post:title:old", "post:title:new"]
    cache.set_many(dict.fromkeys(keys, "stale"))
    subprocess.run(
        [sys.executable, "-c", RAW, connection.vendor, _target(), str(post.pk)],
        check=True,
        timeout=60,
    )
    assert cache.get_many(keys) == dict.fromkeys(keys, "stale")  # nobody delivered yet
    # The post's update, the reply's insert, the post's update by the counter's
    # trigger; not the rolled-back update.
    assert outbox_rows() == 3
    assert "3 change(s) delivered" in follow("--once")
    assert cache.get_many(keys) == {}
    assert Post.objects.get(pk=post.pk).comment_count == 1  # the trigger counted it
    assert "0 change(s) delivered" in follow("--once")  # delivered rows are gone
    assert outbox_rows() == 0


CRASH = """
import os, sys
import django
django.setup()
from django.db import transaction
from signalhooks import invalidate
from tests.relatedapp.models import Post
invalidate(Post, keys=["post:{pk}", "post:title:{title}"])
with transaction.atomic():
    # Registered before the save's own flush: the process dies right after COMMIT.
    transaction.on_commit(lambda: os._exit(0))
    post = Post.objects.get(pk=int(sys.argv[1]))
    post.title = "new"
    post.save()
raise SystemExit("not reached")
"""


def test_follow_delivers_what_a_process_killed_after_commit_left(outbox):
    post = Post.objects.create(title="old")
    follow("--once")
    cache = caches["default"]
    keys = [f"post:{post.pk}", "post:title:old", "post:title:new"]
    cache.set_many(dict.fromkeys(keys, "stale"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_capture",
        "SIGNALHOOKS_CAPTURE_DB": str(connection.settings_dict["NAME"]),
        "SIGNALHOOKS_CAPTURE_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
    }
    subprocess.run([sys.executable, "-c", CRASH, str(post.pk)], check=True, timeout=60, env=env)
    assert Post.objects.get(pk=post.pk).title == "new"  # committed
    assert cache.get_many(keys) == dict.fromkeys(keys, "stale")  # but never flushed
    assert "1 change(s) delivered" in follow("--once")
    assert cache.get_many(keys) == {}


def test_follow_waits_for_more_and_skips_rules_that_went(outbox):
    with transaction.atomic():
        Post.objects.create(title="a")
        with connection.cursor() as cursor:
            # Recorded when Topic had rules; it has none now: dropped, nothing to send.
            cursor.execute(
                "INSERT INTO signalhooks_outbox (model, old, new) "
                "VALUES ('relatedapp.Topic', NULL, '{\"id\": 1}')"
            )
    # The committing process delivered both rows itself (the Topic one: nothing to send).
    assert outbox_rows() == 0
    out = follow("--rounds", "1", "--interval", "0.01")
    assert "0 change(s) delivered" in out
    # In python mode the counters' bulk handlers would write what the triggers wrote.
    python = override_settings(SIGNALHOOKS={"CAPTURE": "python"})
    with python, pytest.raises(CommandError, match=r'needs SIGNALHOOKS\["CAPTURE"\]'):
        follow("--once")


@pytest.mark.django_db(databases=["default", "other"])
@override_settings(SIGNALHOOKS=DATABASE)
def test_follow_without_an_outbox_delivers_nothing():
    assert deliver("other") == 0
    assert "0 change(s) delivered from the outbox of 'other'" in follow(
        "--once", "--database", "other"
    )


@pytest.mark.skipif(not POSTGRES, reason="LISTEN/NOTIFY")
def test_follow_wakes_up_on_a_notification(outbox):
    out = follow("--rounds", "2", "--interval", "0.05")
    assert "0 change(s) delivered" in out
