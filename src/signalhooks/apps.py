from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.utils.module_loading import autodiscover_modules


class SignalHooksConfig(AppConfig):
    name = "signalhooks"
    verbose_name = "signalhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks as signalhooks_checks
        from .cache import finish_rules
        from .conf import conf
        from .registry import registry
        from .related import finish_relations

        checks.register(signalhooks_checks.check_hooks)
        # Database capture: its checks, its triggers installed by migrate, and the
        # execute wrapper by which a process delivers its own transactions' outbox rows.
        from django.db.models.signals import post_migrate

        from .capture import checks as capture_checks
        from .capture import own  # noqa: F401  (connects: each connection's execute wrapper)
        from .capture.install import on_post_migrate

        checks.register(capture_checks.check_capture)
        checks.register(capture_checks.check_triggers, checks.Tags.database)
        post_migrate.connect(
            on_post_migrate, sender=self, weak=False, dispatch_uid="signalhooks.capture"
        )
        from .users import install as install_user_hooks

        registry.setup()
        finish_rules()
        finish_relations()
        install_user_hooks()
        if conf.AUTODISCOVER:
            autodiscover_modules("hooks")
