from __future__ import annotations

from django.apps import AppConfig


class RelatedAppConfig(AppConfig):
    name = "tests.relatedapp"
    label = "relatedapp"
    default_auto_field = "django.db.models.BigAutoField"
