from __future__ import annotations

import signal
import threading

import pytest
import redis
from django.core.cache import caches
from django_redis.cache import RedisCache
from django_redis.client import DefaultClient
from redis.backoff import NoBackoff
from redis.connection import PythonRespSerializer
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from signalhooks.wire import Pipeline, key_maker, pack
from tests.redis_counting import CountingConnection


def redis_pack(args, encoding="utf-8"):
    encode = redis.connection.Encoder(encoding, "strict", False).encode
    return b"".join(PythonRespSerializer(6000, encode).pack(*args))


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_pack_is_what_redis_py_sends(encoding):
    commands = [("EVALSHA", "ab" * 20, "2", "k:1", "clé:ü", "0"), ("WAIT", "1", "100")]
    expected = b"".join(redis_pack(args, encoding) for args in commands)
    assert pack(commands, encoding) == expected


def test_pipeline_sends_in_one_write_and_returns_the_replies():
    client = caches["default"].client.get_client(write=True)
    pipeline = Pipeline(client)
    pipeline.execute_command("SET", "wire:a", "1")
    pipeline.execute_command("INCR", "wire:a")
    pipeline.execute_command("GET", "wire:a")
    before = CountingConnection.round_trips
    assert pipeline.execute() == [b"OK", 2, b"2"]
    assert CountingConnection.round_trips - before == 1
    assert Pipeline(client).execute() == []  # nothing queued: no round trip
    assert CountingConnection.round_trips - before == 1


def test_pipeline_reads_every_reply_before_raising_the_first_error():
    client = caches["default"].client.get_client(write=True)
    client.set("wire:text", "x")
    pipeline = Pipeline(client)
    pipeline.execute_command("INCR", "wire:text")  # not an integer
    pipeline.execute_command("SET", "wire:after", "ran")
    pipeline.execute_command("HGET", "wire:text", "f")  # wrong type
    with pytest.raises(ResponseError, match="not an integer"):
        pipeline.execute()
    assert client.get("wire:after") == b"ran"
    # The connection went back to the pool in step: the next reply is its own.
    follow = Pipeline(client)
    follow.execute_command("GET", "wire:after")
    assert follow.execute() == [b"ran"]


def paused_for(server, seconds):
    """Stop the server's process now; let it go on after ``seconds``."""
    server.process.send_signal(signal.SIGSTOP)
    timer = threading.Timer(seconds, server.process.send_signal, (signal.SIGCONT,))
    timer.start()
    return timer


def test_pipeline_resends_after_a_timeout_as_the_connection_retry_allows(flaky):
    server, _ = flaky
    client = redis.Redis.from_url(server.url, socket_timeout=0.2, retry=Retry(NoBackoff(), 20))
    client.ping()
    pipeline = Pipeline(client)
    pipeline.execute_command("SET", "wire:k", "v")
    pipeline.execute_command("GET", "wire:k")
    timer = paused_for(server, 0.5)
    try:
        assert pipeline.execute() == [b"OK", b"v"]
    finally:
        timer.join()
    client.close()


def test_pipeline_that_gives_up_leaves_no_reply_for_the_next_user(flaky):
    server, _ = flaky
    client = redis.Redis.from_url(
        server.url, socket_timeout=0.2, retry=Retry(NoBackoff(), 0), max_connections=1
    )
    client.set("wire:k", "old")
    pipeline = Pipeline(client)
    pipeline.execute_command("GET", "wire:k")
    timer = paused_for(server, 0.5)
    with pytest.raises(RedisTimeoutError):
        pipeline.execute()
    timer.join()
    # The only connection of the pool went back disconnected: the GET's late reply is
    # never read as the reply of the next command.
    follow = Pipeline(client)
    follow.execute_command("SET", "wire:k", "new")
    follow.execute_command("GET", "wire:k")
    assert follow.execute() == [b"OK", b"new"]
    client.close()


def shouting_key(key, key_prefix, version):
    return f"{key_prefix}|{version}|{key.upper()}"


class HashingClient(DefaultClient):
    def make_key(self, key, version=None, prefix=None):
        return super().make_key(f"h{len(key)}:{key}", version, prefix)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"KEY_FUNCTION": "tests.test_wire.shouting_key"},
        {"OPTIONS": {"CLIENT_CLASS": "tests.test_wire.HashingClient"}},
    ],
    ids=["default key function", "KEY_FUNCTION", "client with its own make_key"],
)
def test_key_maker_names_keys_as_django_redis_does(options):
    backend = RedisCache("redis://127.0.0.1:1/0", {"KEY_PREFIX": "site", "VERSION": 3, **options})
    make_key = key_maker(backend.client)
    for key in ("entry:1", "signalhooks:epoch", "clé"):
        assert make_key(key) == str(backend.client.make_key(key))
        assert type(make_key(key)) is str
