"""A real SMTP server process (aiosmtpd) for the mail tests, started and killed by them.

``python -m tests.smtp_server PORT DIRECTORY`` accepts every mail and stores it in
``DIRECTORY/delivered/``. A file ``DIRECTORY/stall`` makes it hold the reply to the
next DATA (one client) while the file exists: ``data`` holds it before accepting the
mail (a client killed meanwhile delivered nothing), ``reply`` after storing it (the
client never learns that the mail went out: the ambiguous failure).
``DIRECTORY/stalled`` appears once a client is being held, ``DIRECTORY/abandoned`` once
the server saw that client go away while held (a test releases a stall only then, or a
``data`` stall could still store the mail of a client it had not yet seen die).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.test import override_settings

from tests.redis_server import _die_with_parent, free_port


class Recorder:
    """The aiosmtpd handler: store each mail, holding the reply while told to stall."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (directory / "delivered").mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        stall, stalled = self.directory / "stall", self.directory / "stalled"
        # One client is held; the ones after it are served.
        mode = stall.read_text().strip() if stall.exists() and not stalled.exists() else ""
        if mode == "reply":
            self._store(envelope)
        if mode:
            stalled.touch()
            # A client that goes away cancels this coroutine: nothing more is stored.
            try:
                while stall.exists():
                    await asyncio.sleep(0.02)
            except asyncio.CancelledError:
                (self.directory / "abandoned").touch()
                raise
        if mode != "reply":
            self._store(envelope)
        return "250 OK"

    def _store(self, envelope: Any) -> None:
        delivered = self.directory / "delivered"
        name = f"{len(list(delivered.iterdir())):04d}.eml"
        (delivered / f".{name}").write_bytes(envelope.original_content)
        (delivered / f".{name}").rename(delivered / name)  # readers never see half a mail


class SMTPServer:
    """The server process, from the test's side."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SMTPServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.smtp_server", str(self.port), str(self.directory)],
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return self
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"the SMTP server did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def stall(self, mode: str) -> None:
        (self.directory / "stall").write_text(mode)

    def release(self) -> None:
        (self.directory / "stall").unlink()

    def wait_until_stalled(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not (self.directory / "stalled").exists():
            if time.monotonic() > deadline:
                raise AssertionError("no client reached the stalled DATA reply")
            time.sleep(0.02)

    def wait_until_abandoned(self, timeout: float = 30) -> None:
        """Wait until the server saw the held client's connection close."""
        deadline = time.monotonic() + timeout
        while not (self.directory / "abandoned").exists():
            if time.monotonic() > deadline:
                raise AssertionError("the server never saw the held client go away")
            time.sleep(0.02)

    def delivered(self) -> list[EmailMessage]:
        """Return the mails the server accepted, oldest first."""
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for path in sorted((self.directory / "delivered").glob("[0-9]*.eml"))
        ]


def smtp_settings(port: int) -> dict[str, Any]:
    """Return the Django settings that send mail to 127.0.0.1:``port`` by SMTP."""
    smtp = "django.core.mail.backends.smtp.EmailBackend"
    if django.VERSION >= (6, 1):  # MAILERS; EMAIL_* must not be set
        options = {"host": "127.0.0.1", "port": port, "timeout": 5}
        return {"MAILERS": {"default": {"BACKEND": smtp, "OPTIONS": options}}}
    return {
        "EMAIL_BACKEND": smtp,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": port,
        "EMAIL_TIMEOUT": 5,
    }


@contextlib.contextmanager
def sending_to(port: int) -> Iterator[None]:
    """Send this process's mail to 127.0.0.1:``port`` by SMTP."""
    overrides = smtp_settings(port)
    if "MAILERS" in overrides:
        overrides["MAILERS"] = {**settings.MAILERS, **overrides["MAILERS"]}
    with override_settings(**overrides):
        yield


def main() -> None:
    from aiosmtpd.controller import Controller

    port, directory = int(sys.argv[1]), Path(sys.argv[2])
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # before the server thread starts
    controller = Controller(Recorder(directory), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait(stop)
    controller.stop()


if __name__ == "__main__":
    main()
