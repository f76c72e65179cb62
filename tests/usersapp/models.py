from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class Member(AbstractUser):
    """A custom AUTH_USER_MODEL (only installed by tests/settings_custom_user.py)."""

    nickname = models.CharField(max_length=50, blank=True)
