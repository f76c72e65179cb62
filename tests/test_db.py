"""signalhooks.db.connection: always the object ``django.db.connections[alias]`` is."""

from __future__ import annotations

import asyncio
import threading

from django.db import connections

from signalhooks import db


def test_the_thread_s_own_connection():
    assert db.connection("default") is connections["default"]


def test_a_thread_that_has_no_connection_yet_gets_its_own():
    seen = {}

    def run():
        seen["ours"] = db.connection("default")  # before anything opened one here
        seen["django"] = connections["default"]
        seen["again"] = db.connection("default")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen["ours"] is seen["django"] is seen["again"]
    assert seen["ours"] is not connections["default"]


def test_a_connection_set_by_hand_is_the_one_returned():
    seen = {}

    def run():
        connections["default"] = mine = connections.create_connection("default")
        seen["set"], seen["got"] = mine, db.connection("default")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen["got"] is seen["set"]


def test_with_an_event_loop_running_django_decides():
    async def inside():
        return db.connection("default"), connections["default"]

    ours, django = asyncio.run(inside())
    assert ours is django


def test_storage_is_read_only_where_it_is_a_thread_local():
    class Handler:
        _connections = object()  # an asgiref that keeps its storage some other way

    assert db.thread_storage(Handler()) is None
    assert db.thread_storage(connections) is not None
