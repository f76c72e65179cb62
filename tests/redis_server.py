"""Throwaway Redis servers for the test suite.

The suite uses ``REDIS_URL`` when it is set (and then only touches its own key
prefix); otherwise it starts a ``redis-server`` on a free port and stops it at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import redis


class MissingRedis(SystemExit):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # If the test process is killed (no atexit), the server goes with it.
    with contextlib.suppress(OSError):  # not Linux: rely on atexit alone
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class RedisServer:
    """A ``redis-server`` process that saves nothing unless told (``SAVE`` in its own dir).

    ``replica_of`` starts it as a replica (``--replicaof``) of another server.
    """

    def __init__(
        self,
        port: int | None = None,
        replica_of: RedisServer | None = None,
        options: tuple[str, ...] = (),
    ) -> None:
        self.port = port or free_port()
        self.options = options
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.replica_of = replica_of
        # Its own directory: a snapshot (SAVE) is loaded again when it restarts.
        self.directory = tempfile.mkdtemp(prefix="signalhooks-redis-")
        atexit.register(shutil.rmtree, self.directory, True)

    def start(self) -> RedisServer:
        executable = shutil.which("redis-server")
        if executable is None:
            raise MissingRedis(
                "The tests need Redis: install redis-server (Debian/Ubuntu: "
                "apt-get install redis-server; macOS: brew install redis) or set REDIS_URL."
            )
        self.process = subprocess.Popen(
            [
                executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
                *(
                    ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
                    if self.replica_of is not None
                    else []
                ),
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise MissingRedis(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
        client.close()
        return self

    def client(self) -> redis.Redis[bytes]:
        return redis.Redis.from_url(self.url)

    def wait_in_sync(self) -> None:
        """Wait until this replica has caught up with its primary."""
        assert self.replica_of is not None
        primary, replica = self.replica_of.client(), self.client()
        deadline = time.monotonic() + 20
        while True:
            offset = primary.info("replication")["master_repl_offset"]
            state = replica.info("replication")
            if state.get("master_link_status") == "up" and state["slave_repl_offset"] >= offset:
                return
            if time.monotonic() > deadline:
                raise MissingRedis(f"the replica on port {self.port} did not catch up")
            time.sleep(0.02)

    def kill(self) -> None:
        """End the server at once, as a crash would (no shutdown save)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def suite_redis_url() -> str:
    """Return the Redis URL for the suite, starting a throwaway server if needed."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    server = RedisServer().start()
    atexit.register(server.stop)
    # Subprocesses started by tests (management commands, the demo) reuse it.
    os.environ["REDIS_URL"] = server.url
    os.environ["SIGNALHOOKS_TEST_OWNS_REDIS"] = "1"
    return server.url
