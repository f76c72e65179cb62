from __future__ import annotations

import os
import signal
import socket
import threading

import pytest
import redis
from django.core.cache import caches
from django_redis.cache import RedisCache
from django_redis.client import DefaultClient
from redis.backoff import NoBackoff
from redis.connection import PythonRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from signalhooks.wire import Pipeline, exchange, key_maker, make_reader, pack
from tests.redis_counting import CountingConnection


def redis_pack(args, encoding="utf-8"):
    encode = redis.connection.Encoder(encoding, "strict", False).encode
    return b"".join(PythonRespSerializer(6000, encode).pack(*args))


@pytest.mark.parametrize(
    ("encoding", "errors"),
    [("utf-8", "strict"), ("utf_8", "strict"), ("latin-1", "strict"), ("utf-8", "replace")],
)
@pytest.mark.parametrize("name", ["k:1", "clé:ü", "x" * 10_000], ids=["ascii", "not ascii", "long"])
def test_pack_is_what_redis_py_sends_in_one_buffer(encoding, errors, name):
    commands = [("EVALSHA", "ab" * 20, "2", name, "k:2", "0"), ("WAIT", "1", "100")]
    connection = redis.Connection(encoding=encoding, encoding_errors=errors)
    expected = b"".join(redis_pack(args, encoding) for args in commands)
    assert pack(connection, commands) == (expected,)


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


# -- the connection a thread keeps for its flushes -------------------------------------


def client_id(client):
    """Send CLIENT ID through a flush pipeline: which connection the flush went on."""
    pipeline = Pipeline(client)
    pipeline.execute_command("CLIENT", "ID")
    return pipeline.execute()[0]


def connected(server):
    """The clients connected to ``server``, not counting the connection that asks."""
    with server.client() as probe:
        return int(probe.info("clients")["connected_clients"]) - 1


@pytest.fixture
def own_server():
    from tests.redis_server import RedisServer

    server = RedisServer().start()
    yield server
    server.stop()


def test_flushes_of_one_thread_reuse_one_connection(own_server):
    client = redis.Redis.from_url(own_server.url)
    first = client_id(client)
    assert [client_id(client) for _ in range(5)] == [first] * 5
    assert connected(own_server) == 1
    # The held connection is out of the pool: other commands take another one.
    assert client.client_id() != first
    assert connected(own_server) == 2
    client.close()


def test_a_thread_gives_its_connection_back_when_it_ends(own_server):
    client = redis.Redis.from_url(own_server.url)
    seen = []
    for _ in range(10):
        thread = threading.Thread(target=lambda: seen.append(client_id(client)))
        thread.start()
        thread.join()
    # Each thread took the connection the one before it gave back: no leak.
    assert seen == [seen[0]] * 10
    assert connected(own_server) == 1
    assert client.client_id() == seen[0]  # back in the pool
    client.close()


def test_a_connection_of_a_pool_that_is_gone_closes_with_it(own_server):
    client = redis.Redis.from_url(own_server.url)
    client_id(client)
    assert connected(own_server) == 1
    del client  # the pool, its held connection with it (nothing to give back to)
    assert connected(own_server) == 0


def test_a_forked_child_flushes_on_a_connection_of_its_own(own_server):
    client = redis.Redis.from_url(own_server.url)
    parent = client_id(client)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its flush's connection, then leave at once
        try:
            os.write(write, str(client_id(client)).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = int(os.read(read, 100) or 0)
    os.close(read)
    os.waitpid(pid, 0)
    assert child not in (0, parent)
    # The child neither used nor shut the parent's socket.
    assert client_id(client) == parent
    client.close()


@pytest.mark.parametrize("health_check_interval", [0, 3600], ids=["own read", "redis-py read"])
def test_a_flush_after_a_server_restart_reconnects_without_a_retry(
    own_server, health_check_interval
):
    client = redis.Redis.from_url(
        own_server.url, retry=Retry(NoBackoff(), 0), health_check_interval=health_check_interval
    )
    before = client_id(client)
    own_server.kill()
    own_server.start()  # same port; the held socket was closed by the old server
    after = client_id(client)
    assert isinstance(after, int)
    assert connected(own_server) == 1
    assert client_id(client) == after
    del before
    client.close()


def test_a_pool_disconnect_closes_the_held_connection_too(own_server):
    # django-redis' close() with CLOSE_CONNECTION disconnects the pool, in-use included.
    client = redis.Redis.from_url(own_server.url)
    first = client_id(client)
    client.connection_pool.disconnect()
    assert connected(own_server) == 0
    assert client_id(client) != first  # connected again by the next flush
    assert connected(own_server) == 1
    client.close()


def test_a_connection_that_failed_goes_back_to_the_pool(own_server):
    client = redis.Redis.from_url(own_server.url, socket_timeout=0.2, retry=Retry(NoBackoff(), 0))
    client_id(client)
    timer = paused_for(own_server, 0.5)
    with pytest.raises(RedisTimeoutError):
        client_id(client)
    timer.join()
    # Disconnected and given back: the next flush takes a fresh connection from the pool.
    again = client_id(client)
    assert client.client_id() != again
    assert connected(own_server) == 2
    client.close()


def test_health_checks_still_run_on_a_held_connection(own_server):
    client = redis.Redis.from_url(
        own_server.url, health_check_interval=3600, connection_class=CountingConnection
    )
    client_id(client)
    # Due now. (Not health_check_interval=1e-9: redis-py 8.2 then checks health in the
    # middle of its own connect handshake, and reads a handshake reply as the PONG.)
    held = client.connection_pool.__dict__["_signalhooks_held"].lease.connection
    held.next_health_check = 0
    before = CountingConnection.round_trips
    client_id(client)
    assert CountingConnection.round_trips - before == 2  # the PING, then the flush
    client.close()


@pytest.mark.parametrize(
    "options",
    [
        {"connection_pool": "blocking"},
        {"protocol": 3},
    ],
    ids=["BlockingConnectionPool", "RESP3"],
)
def test_pools_that_cannot_spare_a_connection_are_used_per_flush(own_server, options):
    if options.get("connection_pool") == "blocking":
        pool = redis.BlockingConnectionPool.from_url(own_server.url, max_connections=1, timeout=1)
        client = redis.Redis(connection_pool=pool)
    else:
        client = redis.Redis.from_url(own_server.url, **options)
    first = client_id(client)
    # The connection went back: the pool's next command takes it again.
    assert client.client_id() == first
    assert client_id(client) == first
    assert connected(own_server) == 1
    client.close()


def test_a_failed_flush_on_a_blocking_pool_gives_its_connection_back(own_server):
    pool = redis.BlockingConnectionPool.from_url(
        own_server.url,
        max_connections=1,
        timeout=1,
        socket_timeout=0.2,
        retry=Retry(NoBackoff(), 0),
    )
    client = redis.Redis(connection_pool=pool)
    client_id(client)
    timer = paused_for(own_server, 0.5)
    with pytest.raises(RedisTimeoutError):
        client_id(client)
    timer.join()
    # The pool's only connection is back (else this would wait for it and fail).
    assert isinstance(client_id(client), int)
    client.close()


# -- replies, read by redis-py's connection ---------------------------------------------


def test_a_reply_longer_than_one_read_is_read_whole(own_server):
    client = redis.Redis.from_url(own_server.url)
    big = "x" * 300_000
    pipeline = Pipeline(client)
    pipeline.execute_command("SET", "r:big", big)
    pipeline.execute_command("GET", "r:big")
    assert pipeline.execute() == [b"OK", big.encode()]
    client.close()


def test_a_missing_script_is_redis_py_s_error_class(own_server):
    client = redis.Redis.from_url(own_server.url)
    pipeline = Pipeline(client)
    pipeline.execute_command("EVALSHA", "0" * 40, "0")
    pipeline.execute_command("GET", "r:none")
    with pytest.raises(NoScriptError):
        pipeline.execute()
    client.close()


def test_a_pool_used_per_flush_also_reads_every_reply_before_raising(own_server):
    pool = redis.BlockingConnectionPool.from_url(own_server.url, max_connections=1, timeout=1)
    client = redis.Redis(connection_pool=pool)
    client.set("wire:text", "x")
    pipeline = Pipeline(client)
    pipeline.execute_command("INCR", "wire:text")  # not an integer
    pipeline.execute_command("SET", "wire:after", "ran")
    with pytest.raises(ResponseError, match="not an integer"):
        pipeline.execute()
    assert client.get("wire:after") == b"ran"  # the pool's one connection, in step
    client.close()


# -- the hot path's round trip: hiredis reads, the flush moves the bytes ------------------


def raw_connection(server, protocol=2):
    """An open connection to ``server`` speaking RESP ``protocol``, and its hiredis reader."""
    connection = redis.Connection(host="127.0.0.1", port=server.port, protocol=protocol)
    connection.connect()
    return connection, make_reader(connection)


@pytest.fixture
def debug_server():
    from tests.redis_server import RedisServer

    server = RedisServer(options=("--enable-debug-command", "yes")).start()
    yield server
    server.stop()


def test_a_push_message_is_no_reply_and_errors_are_redis_py_s_classes(debug_server):
    connection, reader = raw_connection(debug_server, protocol=3)
    commands = [("DEBUG", "PROTOCOL", "push"), ("EVALSHA", "0" * 40, "0"), ("PING",)]
    sock = connection._sock
    replies = exchange(sock, reader, pack(connection, commands)[0], 3)
    assert replies[0] == b"Some real reply following the push reply"
    assert isinstance(replies[1], NoScriptError)
    assert replies[2] == b"PONG"
    connection.disconnect()


def test_replies_split_at_any_byte_are_read_whole():
    reply = b"*2\r\n$3\r\nabc\r\n:7\r\n+OK\r\n"
    for cut in range(1, len(reply)):
        ours, theirs = socket.socketpair()
        theirs.sendall(reply[:cut])
        sender = threading.Timer(0.01, theirs.sendall, (reply[cut:],))
        sender.start()
        reader = make_reader(redis.Connection())
        assert exchange(ours, reader, b"x", 2) == [[b"abc", 7], b"OK"]
        sender.join()
        ours.close()
        theirs.close()


@pytest.mark.parametrize(
    ("sent", "error", "message"),
    [
        (b":1\r\n:2\r\n", InvalidResponse, "unexpected bytes"),  # more than asked for
        (b"?1\r\n", InvalidResponse, "Protocol error"),
        (b"$5\r\nab", RedisConnectionError, "closed by server"),  # closed mid-reply
        (b"", RedisTimeoutError, "Timeout"),  # nothing comes
    ],
    ids=["extra bytes", "unknown type", "closed", "silent"],
)
def test_a_broken_reply_raises_what_redis_py_raises(sent, error, message):
    ours, theirs = socket.socketpair()
    ours.settimeout(0.05)
    theirs.sendall(sent)
    if sent:
        theirs.shutdown(socket.SHUT_WR)  # the server is done: our send still goes
    with pytest.raises(error, match=message):
        exchange(ours, make_reader(redis.Connection()), b"x", 1)
    ours.close()
    theirs.close()


def test_socket_errors_become_redis_connection_errors():
    ours, theirs = socket.socketpair()
    theirs.close()
    reader = make_reader(redis.Connection())
    with pytest.raises(RedisConnectionError, match="socket"):
        for _ in range(100):  # the first sends may still fit in the buffer
            exchange(ours, reader, b"x" * 65536, 1)
    ours.close()


def test_a_send_that_times_out_raises_redis_timeout():
    ours, theirs = socket.socketpair()
    ours.settimeout(0.05)
    with pytest.raises(RedisTimeoutError, match="Timeout"):
        exchange(ours, make_reader(redis.Connection()), b"x" * 50_000_000, 1)  # nobody reads
    ours.close()
    theirs.close()
