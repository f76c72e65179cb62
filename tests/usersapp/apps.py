from __future__ import annotations

from django.apps import AppConfig


class UsersAppConfig(AppConfig):
    name = "tests.usersapp"
    label = "usersapp"
    default_auto_field = "django.db.models.BigAutoField"
