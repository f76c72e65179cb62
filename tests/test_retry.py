from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import modify_settings, override_settings
from django.test.utils import CaptureQueriesContext

from signalhooks import cached, invalidate, retry
from signalhooks.invalidation import pending_retries
from signalhooks.models import InvalidationRetry
from tests.cache_helpers import fill, present
from tests.cacheapp.models import Entry

pytestmark = pytest.mark.django_db(transaction=True)

# Tried again at once: these tests restart the server and want the next flush to go.
no_breaker = override_settings(SIGNALHOOKS={"BREAKER_SECONDS": 0})


def statements(queries):
    """Return the first word of each query, without transaction control."""
    words = [q["sql"].split()[0] for q in queries]
    return [w for w in words if w not in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")]


def stored():
    return list(InvalidationRetry.objects.order_by("id").values("cache", "keys", "tags"))


@no_breaker
def test_retry_failed_flush_is_one_insert_and_the_next_flush_delivers_it(flaky, flushes):
    server, backend = flaky
    invalidate(Entry, keys=["entry:{slug}"], tags=["entries"], cache="flaky")
    server.stop()
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.create(title="a", slug="a")
    assert statements(queries) == ["INSERT", "INSERT"]  # the row, the retry
    assert stored() == [{"cache": "flaky", "keys": ["entry:a"], "tags": ["entries"]}]
    assert pending_retries("flaky") == 2 and flushes == []
    assert str(InvalidationRetry.objects.get()).startswith("invalidation retry for cache 'flaky'")
    server.start()  # same port, empty: put the stale key back
    fill("entry:a", "entry:b", backend=backend)
    Entry.objects.create(title="b", slug="b")
    assert present("entry:a", "entry:b", backend=backend) == set()
    assert stored() == []
    assert flushes[-1]["keys"] == ["entry:a", "entry:b"]


@no_breaker
def test_retry_a_redis_timeout_is_stored_too(flaky):
    server, backend = flaky
    invalidate(Entry, keys=["entry:{slug}"], cache="flaky")
    fill("entry:a", backend=backend)
    server.process.send_signal(__import__("signal").SIGSTOP)  # alive but silent
    try:
        Entry.objects.create(title="a", slug="a")
    finally:
        server.process.send_signal(__import__("signal").SIGCONT)
    assert pending_retries("flaky") == 1
    Entry.objects.create(title="b", slug="b")
    assert present("entry:a", backend=backend) == set() and pending_retries("flaky") == 0


@no_breaker
def test_retry_a_process_that_starts_later_delivers_on_its_first_flush(flaky):
    server, backend = flaky
    invalidate(Entry, keys=["entry:{slug}"], cache="flaky")
    server.stop()
    Entry.objects.create(title="a", slug="a")
    server.start()
    fill("entry:a", backend=backend)
    retry.reset()  # what a new process knows: nothing delivered yet
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.create(title="b", slug="b")
    assert present("entry:a", backend=backend) == set() and stored() == []
    # The row, reading the store, deleting the delivered rows; later flushes skip the store.
    assert statements(queries) == ["INSERT", "SELECT", "DELETE"]
    with CaptureQueriesContext(connection) as queries:
        Entry.objects.create(title="c", slug="c")
    assert len(queries) == 1


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="another process needs a shared database")
def test_retry_a_new_process_delivers_what_a_crashed_one_stored(flaky):
    server, backend = flaky
    invalidate(Entry, keys=["entry:{slug}"], tags=["entries"], cache="flaky")
    server.stop()
    Entry.objects.create(title="a", slug="a")
    server.start()
    fill("entry:a", backend=backend)
    database = connection.settings_dict
    options = {**settings.CACHES["flaky"], "OPTIONS": {}}  # without the counting connection
    script = textwrap.dedent(
        f"""
        import django, json
        from django.conf import settings
        settings.CACHES["flaky"] = json.loads({json.dumps(json.dumps(options))})
        django.setup()
        from django.core.management import call_command
        call_command("signalhooks", "flush", "--cache", "flaky")
        """
    )
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "flaky: 2 failed invalidation(s) delivered" in result.stdout
    assert present("entry:a", backend=backend) == set() and stored() == []


@no_breaker
def test_retry_flush_command(flaky, capsys):
    server, backend = flaky
    invalidate(Entry, keys=["entry:{slug}"], cache="flaky")
    server.stop()
    Entry.objects.create(title="a", slug="a")
    with pytest.raises(CommandError, match="Could not reach 'flaky'"):
        call_command("signalhooks", "flush", "--cache", "flaky")
    assert "flaky: unreachable; 1 still waiting" in capsys.readouterr().err
    server.start()
    fill("entry:a", backend=backend)
    call_command("signalhooks", "flush", "--cache", "flaky")
    assert "flaky: 1 failed invalidation(s) delivered" in capsys.readouterr().out
    assert present("entry:a", backend=backend) == set() and stored() == []
    with pytest.raises(CommandError, match="No cache 'nope'"):
        call_command("signalhooks", "flush", "--cache", "nope")


def test_retry_over_the_limit_starts_a_new_epoch(flaky, caplog):
    server, backend = flaky
    invalidate(Entry, keys=["a:{slug}", "b:{slug}"], cache="flaky")
    assert cached("page", lambda: "old", cache="flaky") == "old"
    server.stop()
    with override_settings(SIGNALHOOKS={"BREAKER_SECONDS": 0, "RETRY_LIMIT": 3}):
        for slug in "12":
            Entry.objects.create(title=slug, slug=slug)
        assert pending_retries("flaky") == 4  # nothing dropped while it waits
        server.start()
        fill("page", backend=backend)
        with caplog.at_level(logging.ERROR, logger="signalhooks"):
            Entry.objects.create(title="3", slug="3")
    assert "more than RETRY_LIMIT=3 failed invalidations for cache 'flaky'" in caplog.text
    assert stored() == []
    assert cached("page", lambda: "new", cache="flaky") == "new"  # the old epoch is gone


@contextlib.contextmanager
def retry_table_renamed():
    """Make the retry store fail for real: its table is not where Django looks."""
    table = InvalidationRetry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table}_away RENAME TO {table}")


@no_breaker
def test_retry_store_unavailable_never_fails_a_save(flaky, caplog):
    server, backend = flaky
    invalidate(Entry, keys=["entry:{slug}"], cache="flaky")
    server.stop()
    with retry_table_renamed(), caplog.at_level(logging.ERROR, logger="signalhooks"):
        Entry.objects.create(title="a", slug="a")  # Redis and the store both fail
        assert "could not store the failed invalidations of cache 'flaky'" in caplog.text
        assert "keys=['entry:a']" in caplog.text
        server.start()
        fill("entry:b", backend=backend)
        Entry.objects.create(title="b", slug="b")  # cannot read the store: sends its own
    assert "could not read the retry store of cache 'flaky'" in caplog.text
    assert present("entry:b", backend=backend) == set()
    assert retry.due("flaky")  # the store is read again by the next flush


@no_breaker
def test_retry_rows_that_cannot_be_deleted_are_sent_again_later(flaky, caplog):
    server, backend = flaky
    invalidate(Entry, keys=["entry:{slug}"], cache="flaky")
    server.stop()
    Entry.objects.create(title="a", slug="a")
    server.start()
    table = InvalidationRetry._meta.db_table
    with connection.cursor() as cursor:
        if settings.IS_POSTGRES:
            cursor.execute(
                "CREATE FUNCTION keep_rows() RETURNS trigger AS "
                "$$ BEGIN RAISE EXCEPTION 'kept'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER keep BEFORE DELETE ON {table} EXECUTE FUNCTION keep_rows()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER keep BEFORE DELETE ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'kept'); END"
            )
    try:
        with caplog.at_level(logging.ERROR, logger="signalhooks"):
            Entry.objects.create(title="b", slug="b")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER keep{' ON ' + table if settings.IS_POSTGRES else ''}")
            if settings.IS_POSTGRES:
                cursor.execute("DROP FUNCTION keep_rows()")
    assert "could not clear the retry store of cache 'flaky'" in caplog.text
    assert pending_retries("flaky") == 1  # delivered, and sent again next time: harmless


def test_retry_store_read_while_installed_apps_leave_signalhooks_out():
    # A test that overrides INSTALLED_APPS (Django's own suite does) still saves rows
    # with hooks: a flush then reads the retry store of a model Django still has.
    InvalidationRetry.objects.create(cache="default", keys=["k"])
    with modify_settings(INSTALLED_APPS={"remove": ["signalhooks"]}):
        assert pending_retries("default") == 1
