"""Real Redis topologies for the scale-out tests: Sentinel (primary, replica, sentinel)
and a three-primary Redis Cluster, each process started here and stopped at the end.

Like tests/redis_server.py, nothing is kept on disk beyond a temporary folder, and the
processes die with the test process.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.redis_server import _die_with_parent, free_port


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 20) -> None:
    """Poll ``predicate`` until it returns something true, else fail the test naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.05)


class Processes:
    """Redis processes started for one topology, stopped together."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="signalhooks-topology-"))
        self.processes: list[subprocess.Popen[bytes]] = []

    def spawn(self, executable: str, *args: str) -> None:
        path = shutil.which(executable)
        if path is None:
            pytest.fail(f"{executable} is not installed (apt-get install redis-server)")
        self.processes.append(
            subprocess.Popen(
                [path, *args],
                cwd=self.folder,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        )

    def server(self, port: int, *args: str) -> redis.Redis:
        """Start a ``redis-server`` on ``port`` keeping nothing on disk; return a client."""
        self.spawn(
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.folder), *args,
        )  # fmt: skip
        client = redis.Redis(port=port, socket_timeout=2)
        wait_for(client.ping, f"redis-server on port {port}")
        return client

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


class SentinelTopology(Processes):
    """A primary, one replica and one sentinel watching them as :attr:`name`."""

    name = "signalhooks"

    def start(self) -> SentinelTopology:
        primary_port, replica_port, self.sentinel_port = free_port(), free_port(), free_port()
        # A replica (the first, or a demoted primary) syncs at once, not after 5 s.
        now = ("--repl-diskless-sync-delay", "0")
        self.server(primary_port, *now)
        replica = self.server(replica_port, *now, "--replicaof", "127.0.0.1", str(primary_port))
        wait_for(
            lambda: replica.info("replication")["master_link_status"] == "up",
            "the replica in sync with the primary",
        )
        config = self.folder / "sentinel.conf"
        config.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\n"
            f"sentinel monitor {self.name} 127.0.0.1 {primary_port} 1\n"
            f"sentinel down-after-milliseconds {self.name} 1000\n"
            f"sentinel failover-timeout {self.name} 10000\n"
        )
        # redis-sentinel is redis-server in sentinel mode (and not always linked as such).
        self.spawn("redis-server", str(config), "--sentinel")
        self.sentinel = redis.Redis(
            port=self.sentinel_port, socket_timeout=2, decode_responses=True
        )
        wait_for(self._replica_promotable, "the sentinel seeing a replica it can promote")
        return self

    def _replica_promotable(self) -> bool:
        replicas = self.sentinel.sentinel_slaves(self.name)
        return any(
            r["is_slave"] and not r["is_sdown"] and r["master-link-status"] == "ok"
            for r in replicas
        )

    def primary(self) -> tuple[str, int]:
        """Return the address the sentinel gives for the primary now."""
        host, port = self.sentinel.sentinel_get_master_addr_by_name(self.name)
        return str(host), int(port)

    def start_failover(self) -> None:
        """SENTINEL FAILOVER: promote the replica, demote the primary (asynchronously)."""
        # A sentinel that has just been told of the replica may still find it unfit
        # (NOGOODSLAVE) until its next INFO round: ask again until it takes the order.
        wait_for(lambda: self.sentinel.sentinel_failover(self.name), "SENTINEL FAILOVER accepted")

    def wait_promoted(self, old: tuple[str, int]) -> tuple[str, int]:
        """Wait until the sentinel names another primary that acts as one; return it."""
        wait_for(lambda: self.primary() != old, "the sentinel naming a new primary")
        new = redis.Redis(host=self.primary()[0], port=self.primary()[1], socket_timeout=2)
        wait_for(lambda: new.info("replication")["role"] == "master", "the new primary")
        return self.primary()

    def wait_demoted(self, old: tuple[str, int]) -> None:
        """Wait until the old primary ``old`` is a replica in sync with the new one."""
        demoted = redis.Redis(host=old[0], port=old[1], socket_timeout=2)

        def resynced() -> bool:
            state = demoted.info("replication")
            return bool(
                state["role"] == "slave"
                and (state["master_host"], state["master_port"]) == self.primary()
                and state["master_link_status"] == "up"
                and not state["master_sync_in_progress"]
            )

        wait_for(resynced, "the old primary demoted and resynced")
        self.wait_confirmed()

    def wait_confirmed(self) -> None:
        """Wait until the replica has every write the primary took so far (WAIT)."""
        host, port = self.primary()
        primary = redis.Redis(host=host, port=port, socket_timeout=2)

        def confirmed() -> bool:
            # After a sync the primary streams to a replica only from its first ACK, which
            # Redis sends once a second: until then WAIT counts none.
            primary.set("signalhooks-topology:probe", 1)
            return bool(primary.wait(1, 100) == 1)

        wait_for(confirmed, "the primary's writes confirmed by its replica")


def cluster_port() -> int:
    """Return a free port whose cluster bus port (10000 higher) is free too and below 65536."""
    while True:
        port = random.randint(20_000, 55_000)
        try:
            for candidate in (port, port + 10_000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


class ClusterTopology(Processes):
    """Three primaries (no replicas) sharing the 16384 slots, as ``redis-cli --cluster create``."""

    def start(self) -> ClusterTopology:
        self.ports = [cluster_port() for _ in range(3)]
        self.by_port: dict[int, subprocess.Popen[bytes]] = {}
        for port in self.ports:
            self._node(port)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
        )  # fmt: skip
        self.nodes = [redis.Redis(port=p, socket_timeout=2) for p in self.ports]
        wait_for(
            lambda: all(n.cluster("info")["cluster_state"] == "ok" for n in self.nodes),
            "the cluster agreeing on its slots",
        )
        return self

    def _node(self, port: int) -> None:
        # Its own snapshot file (the folder is shared), loaded again when it restarts.
        self.server(
            port, "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
            "--cluster-node-timeout", "2000", "--dbfilename", f"dump-{port}.rdb",
        )  # fmt: skip
        self.by_port[port] = self.processes[-1]

    def restart_from_snapshot(self, port: int) -> None:
        """Crash the node on ``port`` and start it again: it loads its last ``SAVE``.

        Nothing else is saved (``--save ""``, and a kill saves nothing); its node id and
        slots come back from its nodes file, so it rejoins the cluster as itself. Call
        it from the test's main thread: the new process dies with the thread starting
        it (``PR_SET_PDEATHSIG``).
        """
        process = self.by_port[port]
        process.kill()
        process.wait(10)
        self._node(port)
        wait_for(
            lambda: all(n.cluster("info")["cluster_state"] == "ok" for n in self.nodes),
            "the cluster agreeing on its slots after the restart",
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def node_at(self, port: int) -> redis.Redis:
        return self.nodes[self.ports.index(port)]

    def node(self, key: str | bytes) -> redis.Redis:
        """Return a client of the primary holding ``key``."""
        return self.node_at(self.holding(key))

    def holding(self, key: str | bytes) -> int:
        """Return the port of the primary whose slots hold ``key``."""
        slot = self.nodes[0].cluster("keyslot", key)
        for start, end, primary, *_ in self.nodes[0].cluster("slots"):
            if start <= slot <= end:
                return int(primary[1])
        raise LookupError(f"no primary serves the slot of {key!r}")
