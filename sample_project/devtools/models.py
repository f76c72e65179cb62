"""What the mailbox and the invalidations panel show: rows, so every process sees them."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Mail(models.Model):
    """A mail the site sent (see mail.MailboxBackend)."""

    subject = models.CharField(max_length=998)
    from_email = models.CharField(max_length=254)
    to = models.TextField(help_text="Recipients, one per line.")
    body = models.TextField()
    html = models.TextField(blank=True)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-sent_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.subject} → {self.recipients}"

    @property
    def recipients(self) -> str:
        return ", ".join(self.to.splitlines())


class Invalidation(models.Model):
    """One flush of signalhooks' invalidations, as reported by ``cache_invalidated``."""

    at = models.DateTimeField(default=timezone.now)
    cache = models.CharField(max_length=100)
    keys = models.JSONField(default=list)
    tags = models.JSONField(default=list)
    patterns = models.JSONField(default=list)
    cause = models.TextField(blank=True, help_text="The saves and deletes behind the flush.")

    KEEP = 50  # newest rows kept

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.cache}: {', '.join(self.keys + self.tags + self.patterns)}"
