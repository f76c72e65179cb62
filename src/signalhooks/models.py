"""Delivery state of the welcome mail: one row per user, so one mail per user."""

from __future__ import annotations

from django.db import models


class WelcomeMail(models.Model):
    """Whether the welcome mail of one user went out, failed, or was skipped."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped"

    # The user's primary key as text: works with any AUTH_USER_MODEL pk type and
    # never blocks deleting the user.
    user_pk = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When the latest send started: a claim older than WELCOME_MAIL_CLAIM_TIMEOUT
    # without an outcome was lost with its worker. Also identifies the claim, so a
    # send that was taken over never records its outcome over its successor's.
    claimed_at = models.DateTimeField(null=True, blank=True)
    # When a failed mail is due again; ``None`` once it is out of attempts.
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "welcome mail"
        # ``manage.py signalhooks welcome --retry`` looks for failed and stale mails.
        indexes = [models.Index(fields=["status", "updated_at"], name="signalhooks_welcome_due")]

    def __str__(self) -> str:
        return f"welcome mail for user {self.user_pk}: {self.status}"


class InvalidationRetry(models.Model):
    """Invalidations a flush could not deliver; the next successful flush sends them."""

    cache = models.CharField(max_length=100)
    keys = models.JSONField(default=list)
    tags = models.JSONField(default=list)
    patterns = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "invalidation retry"
        indexes = [models.Index(fields=["cache", "id"], name="signalhooks_retry_cache")]

    def __str__(self) -> str:
        return f"invalidation retry for cache {self.cache!r} from {self.created_at}"
