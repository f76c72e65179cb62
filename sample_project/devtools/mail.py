"""An email backend for development: mail goes into the mailbox page and to the console."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend


class MailboxBackend(BaseEmailBackend):
    """Store each message as a :class:`~sample_project.devtools.models.Mail` row, print it."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        from .models import Mail

        for message in email_messages:
            html = ""
            if isinstance(message, EmailMultiAlternatives):
                html = next((str(a[0]) for a in message.alternatives if a[1] == "text/html"), "")
            recipients = message.recipients()
            mail = Mail.objects.create(
                subject=str(message.subject),
                from_email=str(message.from_email),
                to="\n".join(recipients),
                body=str(message.body),
                html=html,
            )
            self.echo(mail)
        return len(email_messages)

    def echo(self, mail: Any) -> None:
        # One line on the console; the whole mail is on the mailbox page.
        sys.stderr.write(f"[mailbox #{mail.pk}] to {mail.recipients}: {mail.subject}\n")
