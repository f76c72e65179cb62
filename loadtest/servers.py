"""The processes under test: our own Redis, gunicorn serving the sample, the mail worker.

Each is started, killed and restarted for real; none is ever the Redis on 6379.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from tests.redis_server import _die_with_parent, free_port

ROOT = Path(__file__).resolve().parent.parent


def wait_until(predicate: object, timeout: float, what: str) -> None:
    """Poll ``predicate()`` until it is true; raise naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"loadtest: {what} did not happen within {timeout:.0f}s")
        time.sleep(0.05)


class Redis:
    """A ``redis-server`` on a fixed port that can die and come back empty or from a dump.

    Unlike the suite's throwaway server it keeps a dump file (in ``workdir``), written
    only when :meth:`snapshot` asks: "restarted from a snapshot" must bring back
    exactly what Redis held at that moment.
    """

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.dump = workdir / "dump.rdb"
        self.process: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def start(self, *, from_snapshot: bool = False) -> None:
        if not from_snapshot:
            self.dump.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--dbfilename", self.dump.name],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )  # fmt: skip
        wait_until(self._answers, 10, f"redis-server on port {self.port} answering")

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False

    def snapshot(self) -> None:
        """Write the dump file now (SAVE: synchronous, so it holds this very moment)."""
        self.client().save()

    def kill(self) -> None:
        """SIGKILL: no shutdown save, connections reset mid-command."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def pause(self, seconds: float) -> None:
        """Hang every client for ``seconds``: Redis accepts connections but answers nothing."""
        self.client().execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")


def django_env(**extra: str) -> dict[str, str]:
    """Return the environment of a process that runs the sample under loadtest.settings."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loadtest.settings",
        "PYTHONPATH": str(ROOT),
        "SAMPLE_REDIS_WARNED": "1",
        **extra,
    }


class Gunicorn:
    """gunicorn serving the sample project with several sync workers."""

    def __init__(self, workers: int, log: Path) -> None:
        self.port = free_port()
        self.workers = workers
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "sample_project.wsgi:application",
                 "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
                 "--timeout", "30", "--graceful-timeout", "10", "--log-level", "warning"],
                cwd=ROOT, env=django_env(), stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )  # fmt: skip

    def scale(self, workers: int) -> None:
        """Run ``workers`` workers from now on (SIGTTIN adds one, SIGTTOU removes one)."""
        assert self.process is not None
        while self.workers != workers:
            more = workers > self.workers
            self.process.send_signal(signal.SIGTTIN if more else signal.SIGTTOU)
            self.workers += 1 if more else -1
            time.sleep(0.2)  # the master handles one; a second sent at once would merge

    def reload(self) -> None:
        """SIGHUP: gunicorn starts new workers (settings loaded afresh) and stops the old ones."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None


class MailWorker:
    """``manage.py db_worker``: sends the queued welcome mails, slowly (LOADTEST_MAIL_DELAY)."""

    def __init__(self, delay: float, log: Path) -> None:
        self.delay = delay
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "django", "db_worker", "--no-startup-delay",
                 "--interval", "0.2", "--no-reload"],
                cwd=ROOT, env=django_env(LOADTEST_MAIL_DELAY=str(self.delay)),
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL: whatever it was sending is interrupted, its task left claimed."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None
