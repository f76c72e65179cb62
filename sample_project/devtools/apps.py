from __future__ import annotations

from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    name = "sample_project.devtools"
    label = "devtools"
    verbose_name = "development tools"
    default_auto_field = "django.db.models.BigAutoField"
