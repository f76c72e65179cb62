"""Work off the mail queue once, in this process (the demo walkthrough and the tests)."""

from __future__ import annotations

from django.core.management import call_command


def deliver_mail() -> None:
    """Run the queued mail tasks, as ``manage.py db_worker --backend mail`` would, then return."""
    call_command("db_worker", "--batch", "--backend", "mail", "--no-startup-delay", verbosity=0)
