"""A mailbox backend that takes its time, so that the mail worker can be killed mid-send."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from django.core.mail import EmailMessage
from sample_project.devtools.mail import MailboxBackend


class SlowMailboxBackend(MailboxBackend):
    """Wait ``LOADTEST_MAIL_DELAY`` seconds (set for the worker only), then store the mail."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        # The wait comes first: a kill during it loses the send, never half of one.
        time.sleep(float(os.environ.get("LOADTEST_MAIL_DELAY", "0")))
        return super().send_messages(email_messages)

    def echo(self, mail: object) -> None:
        """Print nothing: thousands of mails would drown the run's output."""
