from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models


class MemberManager(BaseUserManager["Member"]):
    def create_user(self, handle, contact="", password=None, **extra):
        member = self.model(handle=handle, contact=self.normalize_email(contact), **extra)
        member.set_password(password)
        member.save(using=self._db)
        return member


class Member(AbstractBaseUser, PermissionsMixin):
    """A custom AUTH_USER_MODEL (only installed by tests/settings_custom_user.py).

    Unlike ``auth.User``: a UUID primary key, the username in ``handle`` and the
    email address in ``contact``.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    handle = models.CharField(max_length=50, unique=True)
    contact = models.EmailField(blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)

    USERNAME_FIELD = "handle"
    EMAIL_FIELD = "contact"
    REQUIRED_FIELDS = ["contact"]

    objects = MemberManager()
