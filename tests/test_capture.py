"""Database capture (SIGNALHOOKS["CAPTURE"] = "database"): counters, totals and touches
kept by triggers, on SQLite and PostgreSQL (whichever DATABASE_URL picks).

These tests run in the suite's own process, beside python mode: the ``capture``
fixture declares the relations, switches the setting and installs their triggers with
the function ``migrate`` calls (post_migrate); leaving it switches back and installs
again, which drops them. Inside a test's transaction the DDL is rolled back anyway.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from decimal import Decimal
from io import StringIO

import django
import pytest
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection, models, transaction
from django.db.backends.dummy.base import DatabaseWrapper as DummyWrapper
from django.db.models import F
from django.test import override_settings
from django.test.utils import CaptureQueriesContext, isolate_apps

from signalhooks import counter, invalidate, recount, total, touch
from signalhooks.capture import checks, postgresql
from signalhooks.capture.install import (
    expected,
    install,
    install_on,
    status,
    status_of,
    vendor,
)
from signalhooks.capture.spec import Unsupported, captured, tables
from signalhooks.capture.sql import Dialect
from tests.relatedapp.models import Line, Note, Order, Page, Post, Reply, Tag, Tagging

pytestmark = pytest.mark.django_db

DATABASE = {"CAPTURE": "database"}
POSTGRES = connection.vendor == "postgresql"


def declare():
    counter(Reply, "post", "comment_count")
    counter(Reply, "post", "approved_count", where={"approved": True})
    touch(Reply, "post", "updated_at")
    total(Line, "order", "total", of="amount")
    total(Line, "order", "paid_total", of="amount", where={"paid": True})
    total(Line, "order", "quantity", of="quantity")
    counter(Line, "order", "line_count")


@pytest.fixture
def capture():
    declare()
    with override_settings(SIGNALHOOKS=DATABASE):
        install("default")
        yield
    install("default")  # python mode: drops them all


def counts(post):
    post.refresh_from_db()
    return post.comment_count, post.approved_count


def totals(order):
    order.refresh_from_db()
    return order.total, order.paid_total, order.line_count


# -- what the triggers keep -------------------------------------------------------------


def test_capture_counts_creates_changes_moves_and_deletes(capture):
    first, second = Post.objects.create(), Post.objects.create()
    reply = Reply.objects.create(post=first, approved=True)
    Reply.objects.create(post=first)
    assert counts(first) == (2, 1)
    assert first.updated_at is not None
    reply.approved = False  # out of the where= condition
    reply.save()
    assert counts(first) == (2, 0)
    reply.approved = True
    reply.post = second  # moved, into the condition again
    reply.save()
    assert counts(first) == (1, 0) and counts(second) == (1, 1)
    reply.post = None
    reply.save()
    assert counts(second) == (0, 0)
    reply.post = first
    reply.save()
    reply.delete()
    assert counts(first) == (1, 0)


def test_capture_touches_the_parent_on_every_write(capture):
    post = Post.objects.create()
    reply = Reply.objects.create(post=post)
    post.refresh_from_db()
    Post.objects.filter(pk=post.pk).update(updated_at=None)
    reply.text = "edited"  # no counted field changed: still a change of a child
    reply.save()
    post.refresh_from_db()
    assert post.updated_at is not None
    assert abs(post.updated_at - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(
        minutes=5
    )


def test_capture_the_python_path_is_off(capture):
    post = Post.objects.create()
    with CaptureQueriesContext(connection) as queries:
        Reply.objects.create(post=post)
    # The INSERT alone: the trigger's UPDATE runs inside the database.
    assert [q["sql"].split()[0] for q in queries] == ["INSERT"]
    assert counts(post) == (1, 0)  # counted once, not twice


def test_capture_parents_in_memory_reload_and_their_cache_rules_run(capture, signalhooks_record):
    invalidate(Post, keys=["post:{pk}"])
    post, other = Post.objects.create(), Post.objects.create()
    signalhooks_record.run_on_commit()
    cache = caches["default"]
    cache.set_many({f"post:{post.pk}": "stale", f"post:{other.pk}": "fresh"})
    reply = Reply.objects.create(post=post, approved=True)
    signalhooks_record.run_on_commit()  # what the commit would run
    assert cache.get(f"post:{post.pk}") is None
    assert cache.get(f"post:{other.pk}") == "fresh"
    assert reply.post.comment_count == 1  # reloaded: the trigger changed the row


def test_capture_stale_copies_saved_and_deleted(capture):
    order = Order.objects.create()
    line = Line.objects.create(order=order, amount=Decimal("10.00"))
    fresh, stale = Line.objects.get(pk=line.pk), Line.objects.get(pk=line.pk)
    fresh.amount = Decimal("20.00")
    fresh.save()
    stale.amount = Decimal("15.00")
    stale.save()
    assert totals(order) == (Decimal("15.00"), Decimal("0.00"), 1)
    # A stale copy of a reply another copy moved to a second post: deleting it takes
    # the reply from the post it is on, not from the one the copy remembers.
    first, second = Post.objects.create(), Post.objects.create()
    reply = Reply.objects.create(post=first)
    moved, stale_reply = Reply.objects.get(pk=reply.pk), Reply.objects.get(pk=reply.pk)
    moved.post = second
    moved.save()
    stale_reply.delete()
    assert counts(first) == (0, 0) and counts(second) == (0, 0)


def test_capture_plain_managers_update_bulk_create_bulk_update_and_delete(capture):
    order, other = Order.objects.create(), Order.objects.create()
    plain = Line._base_manager  # a plain Manager: no hooks at all
    plain.bulk_create(
        [Line(order=order, amount=Decimal("1.50"), paid=i % 2 == 0) for i in range(4)]
    )
    assert totals(order) == (Decimal("6.00"), Decimal("3.00"), 4)
    plain.filter(order=order).update(amount=F("amount") * 2)
    assert totals(order) == (Decimal("12.00"), Decimal("6.00"), 4)
    lines = list(plain.filter(order=order).order_by("pk"))
    for line in lines[:2]:
        line.order = other
        line.amount = Decimal("5.00")
    plain.bulk_update(lines, ["order", "amount"])
    assert totals(order) == (Decimal("6.00"), Decimal("3.00"), 2)
    assert totals(other) == (Decimal("10.00"), Decimal("5.00"), 2)
    plain.filter(order=other).delete()
    assert totals(other) == (Decimal("0.00"), Decimal("0.00"), 0)
    # A queryset update, then deleting a line loaded before it: still exact.
    loaded = plain.filter(order=order).first()
    plain.filter(order=order).update(amount=F("amount") * 2)
    loaded.delete()
    assert totals(order) == (Decimal("6.00"), Decimal("0.00"), 1)  # the paid one went
    # HooksQuerySet's own bulk operations are not counted a second time.
    Line.objects.bulk_create([Line(order=order, amount=Decimal("1.00"))])
    Line.objects.filter(order=order).update(paid=True)
    assert totals(order) == (Decimal("7.00"), Decimal("7.00"), 2)
    Line.objects.filter(order=order).delete()
    assert totals(order) == (Decimal("0.00"), Decimal("0.00"), 0)


def test_capture_nullable_total_stays_null_until_an_amount_moves_it(capture):
    order = Order.objects.create(quantity=None)
    line = Line.objects.create(order=order, amount=None, quantity=0)
    order.refresh_from_db()
    assert order.quantity is None and order.line_count == 1
    line.quantity = 3
    line.save()
    order.refresh_from_db()
    assert order.quantity == 3


def test_capture_a_drifted_counter_never_goes_below_zero(capture):
    post = Post.objects.create()
    reply = Reply.objects.create(post=post, approved=True)
    Post.objects.filter(pk=post.pk).update(comment_count=0)  # drifted
    reply.delete()
    assert counts(post) == (0, 0)


def test_capture_rolled_back_writes_move_nothing(capture):
    order = Order.objects.create()
    Line.objects.create(order=order, amount=Decimal("2.00"))
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        Line.objects.create(order=order, amount=Decimal("3.00"))
        Line._base_manager.filter(order=order).update(amount=F("amount") * 10)
        1 / 0  # noqa: B018
    assert totals(order) == (Decimal("2.00"), Decimal("0.00"), 1)


def test_capture_recount_still_repairs(capture):
    post = Post.objects.create()
    Reply.objects.create(post=post, approved=True)
    Post.objects.filter(pk=post.pk).update(comment_count=7, approved_count=0)
    assert recount(Post) == {
        "comment_count": {post.pk: (7, 1)},
        "approved_count": {post.pk: (0, 1)},
    }
    assert counts(post) == (1, 1)


def test_capture_a_stale_parent_save_keeps_the_counts(capture):
    post = Post.objects.create()
    stale = Post.objects.get(pk=post.pk)
    Reply.objects.create(post=post)
    stale.title = "edited"
    stale.save()
    assert counts(post) == (1, 0)


def test_capture_to_field_keys_date_fields_and_ancestor_tables():
    counter(Tagging, "tag", "use_count")
    touch(Tagging, "tag", "used_on")
    counter(Note, "page", "comment_count")  # Content.comment_count: the ancestor's table
    with override_settings(SIGNALHOOKS=DATABASE):
        install("default")
        tag = Tag.objects.create(slug="x")
        tagging = Tagging.objects.create(tag=tag)
        tag.refresh_from_db()
        assert tag.use_count == 1 and tag.used_on is not None
        tagging.delete()
        tag.refresh_from_db()
        assert tag.use_count == 0
        page = Page.objects.create()
        Note.objects.create(page=page)
        page.refresh_from_db()
        assert page.comment_count == 1


def test_capture_ten_thousand_row_update(capture):
    order = Order.objects.create()
    Line._base_manager.bulk_create(
        [Line(order=order, amount=Decimal("1.00"), paid=i < 100) for i in range(10_000)]
    )
    assert totals(order) == (Decimal("10000.00"), Decimal("100.00"), 10_000)
    Line._base_manager.update(amount=F("amount") + 1)
    assert totals(order) == (Decimal("20000.00"), Decimal("200.00"), 10_000)


@pytest.mark.skipif(not POSTGRES, reason="PostgreSQL's statement-level triggers")
def test_capture_postgresql_triggers_run_once_per_statement(capture):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.tgtype FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relname = 'relatedapp_line' AND t.tgname LIKE 'signalhooks%%'"
        )
        kinds = [row[0] for row in cursor.fetchall()]
    assert len(kinds) == 3
    assert all(kind & 1 == 0 for kind in kinds)  # TRIGGER_TYPE_ROW unset: per statement


@pytest.mark.skipif(django.VERSION < (6, 1), reason="on_delete=DB_CASCADE is new in Django 6.1")
def test_capture_db_cascade_is_counted_by_the_database():
    from tests.relatedapp.models import Remark

    counter(Remark, "post", "quote_count")
    counter(Reply, "post", "comment_count")
    with override_settings(SIGNALHOOKS=DATABASE):
        install("default")
        post = Post.objects.create()
        Remark.objects.create(post=post)
        assert Post.objects.get(pk=post.pk).quote_count == 1
        post.delete()  # the database deletes the remark; its trigger finds no post
        assert not Remark.objects.exists()
        # The child's own deletion still counts.
        kept = Post.objects.create()
        Remark.objects.create(post=kept)
        Remark.objects.filter(post=kept).delete()
        assert Post.objects.get(pk=kept.pk).quote_count == 0


# -- another process ---------------------------------------------------------------------

WRITER = """
import sys
vendor, target, post, other = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if vendor == "sqlite":
    import sqlite3
    db = sqlite3.connect(target)
    mark = "?"
else:
    import psycopg
    db = psycopg.connect(target)
    mark = "%s"
cur = db.cursor()
for approved in (True, True, False):
    cur.execute(
        f"INSERT INTO relatedapp_reply (post_id, approved, text) VALUES ({mark}, {mark}, 'x')",
        (post, approved),
    )
db.commit()
cur.execute(f"UPDATE relatedapp_reply SET post_id = {mark} WHERE approved = {mark}", (other, False))
cur.execute("DELETE FROM relatedapp_reply WHERE id IN (SELECT MIN(id) FROM relatedapp_reply)")
db.commit()
cur.execute(
    f"INSERT INTO relatedapp_reply (post_id, approved, text) VALUES ({mark}, {mark}, 'y')",
    (post, True),
)
db.rollback()  # rolled back: moves nothing
db.close()
"""


def _target():
    settings = connection.settings_dict
    if not POSTGRES:
        return str(settings["NAME"])
    parts = {
        "dbname": settings["NAME"],
        "host": settings["HOST"],
        "port": settings["PORT"],
        "user": settings["USER"],
        "password": settings["PASSWORD"],
    }
    return " ".join(f"{key}={value}" for key, value in parts.items() if value)


@pytest.mark.django_db(transaction=True)
def test_capture_another_process_writing_with_its_own_driver(capture):
    post, other = Post.objects.create(), Post.objects.create()
    subprocess.run(
        [sys.executable, "-c", WRITER, connection.vendor, _target(), str(post.pk), str(other.pk)],
        check=True,
        timeout=60,
    )
    assert counts(post) == (1, 1)  # two approved in, the first one deleted
    assert counts(other) == (1, 0)  # the unapproved one moved there
    assert recount(Post) == {"comment_count": {}, "approved_count": {}}


# -- installation ------------------------------------------------------------------------


def names(using="default"):
    return {(s.table, s.name): s.state for s in status(using)}


@pytest.mark.django_db(transaction=True)
def test_capture_migrate_installs_replaces_and_drops_triggers():
    counter(Reply, "post", "comment_count")
    out = StringIO()
    try:
        with override_settings(SIGNALHOOKS=DATABASE):
            assert set(names().values()) == {"missing"}
            call_command("migrate", verbosity=1, stdout=out)
            # Reply's and Vote's counters; cacheapp.Note's rules (declared on import): its outbox.
            assert "signalhooks: 9 trigger(s) created, 0 dropped" in out.getvalue()
            first = names()
            assert set(first.values()) == {"current"}
            assert {table for table, _ in first} == {
                "cacheapp_note",
                "relatedapp_reply",
                "relatedapp_vote",
            }
            # A new declaration: the reply table's triggers are replaced.
            counter(Reply, "post", "approved_count", where={"approved": True})
            replaced = names()
            assert sorted(replaced.values()).count("outdated") == 3
            call_command("migrate", verbosity=0)
            assert set(names().values()) == {"current"}
            post = Post.objects.create()
            Reply.objects.create(post=post, approved=True)
            assert counts(post) == (1, 1)
    finally:
        call_command("migrate", verbosity=0)  # python mode: none left
    assert names() == {}


def test_capture_python_mode_installs_nothing():
    declare()
    assert expected("default") == []
    assert install("default") == []
    assert names() == {}


def test_capture_triggers_command(capture):
    out = StringIO()
    call_command("signalhooks", "triggers", stdout=out)
    text = out.getvalue()
    assert "relatedapp_line" in text and "relatedapp_reply" in text
    assert text.count("current") == 12  # with cacheapp.Note's outbox triggers
    assert "INSERT:outbox" in text
    counter(Reply, "post", "quote_count", where={"approved": False})
    with pytest.raises(CommandError, match="6 trigger"):
        call_command("signalhooks", "triggers", stdout=StringIO())


def test_capture_triggers_command_in_python_mode():
    out = StringIO()
    call_command("signalhooks", "triggers", stdout=out)
    assert "No signalhooks triggers on 'default'" in out.getvalue()


# -- checks ------------------------------------------------------------------------------


def test_capture_check_rejects_an_unknown_mode():
    from signalhooks.checks import check_settings

    with override_settings(SIGNALHOOKS={"CAPTURE": "triggers"}):
        assert checks.check_capture() == []  # reported once, by the settings check
        [error] = check_settings()
    assert error.id == "signalhooks.E041"
    assert "CAPTURE" in error.msg and "'python' or 'database'" in error.msg


def test_capture_check_accepts_both_modes(capture):
    assert checks.check_capture() == []
    assert checks.check_triggers(databases=["default"]) == []


def test_capture_check_reports_missing_and_outdated_triggers(capture):
    counter(Reply, "post", "quote_count", where={"approved": False})
    warnings = checks.check_triggers(databases=["default"])
    assert {w.id for w in warnings} == {"signalhooks.W060"}
    assert sorted(w.msg.split(" is ")[1].split(";")[0] for w in warnings) == [
        *["missing"] * 3,
        *["outdated"] * 3,
    ]
    assert checks.check_triggers() == []  # not a database check run


def test_capture_checks_are_silent_in_python_mode():
    assert checks.check_capture() == []
    assert checks.check_triggers(databases=["default"]) == []


def test_capture_another_database_is_a_clear_error():
    dummy = DummyWrapper({"ENGINE": "django.db.backends.dummy"}, alias="legacy")
    with pytest.raises(ImproperlyConfigured, match="needs PostgreSQL or SQLite; database 'legacy'"):
        vendor(dummy)
    assert install_on(dummy) == [] and status_of(dummy) == []  # python mode: nothing to do
    [error] = checks.connection_errors(dummy)
    assert error.id == "signalhooks.E061"
    assert 'Set SIGNALHOOKS["CAPTURE"] = "python"' in error.msg


@isolate_apps("tests.relatedapp")
def test_capture_check_reports_declarations_no_trigger_can_keep():
    class Base(models.Model):
        post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="+")

        class Meta:
            app_label = "relatedapp"

    class Child(Base):
        class Meta:
            app_label = "relatedapp"

    class Outside(models.Model):
        post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="+")

        class Meta:
            app_label = "relatedapp"
            managed = False  # not migrated here: no trigger

    class Shelf(models.Model):
        count = models.IntegerField(default=0)

        class Meta:
            app_label = "relatedapp"

    class NamedShelf(Shelf):
        slug = models.SlugField(unique=True)

        class Meta:
            app_label = "relatedapp"

    class Book(models.Model):
        shelf = models.ForeignKey(NamedShelf, to_field="slug", on_delete=models.CASCADE)

        class Meta:
            app_label = "relatedapp"

    counter(Child, "post", "comment_count")
    counter(Outside, "post", "quote_count")
    counter(Book, "shelf", "count")
    invalidate(Outside, keys=["outside:{pk}"])  # not migrated here: no outbox trigger
    invalidate(Page, keys=["page:{comment_count}"])  # Content's column: Python's path only
    with override_settings(SIGNALHOOKS=DATABASE):
        errors = checks.check_capture()
        assert {error.id for error in errors} == {"signalhooks.E062"}
        assert "post live(s) in an ancestor's table" in errors[0].msg
        assert "kept fields and the foreign key's to_field 'slug' are in different" in errors[1].msg
        assert len(errors) == 2  # once each, not once per database
        assert "relatedapp_page" not in captured(connection)
        assert not [spec for spec in captured(connection).values() if "outside" in spec.table]
        assert checks.check_triggers(databases=["default"]) == []


def test_capture_where_values_a_trigger_cannot_hold():
    dialect = Dialect(str, "IS", "MAX", "1", "0", "now", "today")
    assert dialect.literal("it's") == "'it''s'"
    assert dialect.literal(datetime.date(2026, 1, 2)) == "'2026-01-02'"
    assert dialect.literal(Decimal("1.50")) == "1.50"
    assert dialect.literal(None) == "NULL"
    with pytest.raises(Unsupported, match="NUL"):
        dialect.literal("a\x00b")
    with pytest.raises(Unsupported, match=r"b'x' \(bytes\) cannot be written into a trigger"):
        dialect.literal(b"x")


def test_capture_postgresql_sql_is_per_statement_over_transition_tables(capture):
    # Rendered on whichever database runs the suite (the quoting is the same); the
    # PostgreSQL run executes it in every test above.
    spec = tables(connection)["relatedapp_line"]
    by_event = {t.event: t for t in postgresql.triggers(spec, connection)}
    function, trigger = by_event["UPDATE"].create
    assert trigger.endswith(
        'AFTER UPDATE ON "relatedapp_line" REFERENCING OLD TABLE AS signalhooks_old '
        "NEW TABLE AS signalhooks_new FOR EACH STATEMENT EXECUTE FUNCTION "
        f"{by_event['UPDATE'].name}()"
    )
    # One UPDATE of the orders per statement: old rows out, new rows in, summed per order.
    assert function.count('UPDATE "relatedapp_order" AS p') == 1
    assert "FROM signalhooks_old AS r UNION ALL SELECT" in function
    assert "GROUP BY x.k" in function
    assert 'GREATEST(COALESCE(p."line_count", 0) + d.s' in function  # counters: never below 0
    assert "REFERENCING NEW TABLE AS signalhooks_new" in by_event["INSERT"].create[1]
    assert "REFERENCING OLD TABLE AS signalhooks_old" in by_event["DELETE"].create[1]
    # A touch writes every parent a statement reached, moved or not.
    [insert, *_] = postgresql.triggers(tables(connection)["relatedapp_reply"], connection)
    assert '"updated_at" = statement_timestamp() FROM' in insert.create[0]
    assert 'WHERE p."id" = d.k;' in insert.create[0]
    # The outbox: the rule columns of every row a statement wrote, then one notification.
    invalidate(Post, keys=["post:{title}"])
    [spec] = [c for c in captured(connection).values() if c.table == "relatedapp_post"]
    outbox = {t.event: t.create for t in postgresql.outbox_triggers(spec, connection)}
    assert set(outbox) == {"INSERT:outbox", "UPDATE:outbox", "DELETE:outbox"}
    update_function, update_trigger = outbox["UPDATE:outbox"]
    assert (
        "SELECT 'relatedapp.Post', json_build_object('id', o.\"id\", 'title', o.\"title\"), "
        "json_build_object('id', n.\"id\", 'title', n.\"title\") FROM signalhooks_old AS o "
        'FULL JOIN signalhooks_new AS n ON o."id" = n."id"'
    ) in update_function
    assert "PERFORM pg_notify('signalhooks_outbox', '');" in update_function
    assert "FOR EACH STATEMENT" in update_trigger
    assert "NULL FROM signalhooks_old AS o" in outbox["DELETE:outbox"][0]
    assert "SELECT 'relatedapp.Post', NULL," in outbox["INSERT:outbox"][0]
    name = by_event["DELETE"].name
    assert postgresql.drop(connection, "relatedapp_line", name) == (
        f'DROP TRIGGER IF EXISTS "{name}" ON "relatedapp_line"',
        f'DROP FUNCTION IF EXISTS "{name}"()',
    )
