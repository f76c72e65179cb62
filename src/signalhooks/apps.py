from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules

from . import checks as signalhooks_checks
from .cache import finish_rules
from .capture import checks as capture_checks
from .capture import own  # noqa: F401 - connects each connection's execute wrapper
from .capture.install import on_post_migrate
from .conf import conf
from .registry import registry
from .related import finish_relations
from .users import install as install_user_hooks


class SignalHooksConfig(AppConfig):
    name = "signalhooks"
    verbose_name = "signalhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The one import inside a function the layout allows (tests/test_layout.py): the
        # welcome mail imports the models, which Django loads only after this module.
        from . import welcome

        checks.register(signalhooks_checks.check_hooks)
        # Database capture: its checks, its triggers installed by migrate, and (imported
        # above: `own` connects each connection's execute wrapper) the delivery of a
        # process's own transactions' outbox rows.
        checks.register(capture_checks.check_capture)
        checks.register(capture_checks.check_triggers, checks.Tags.database)
        post_migrate.connect(
            on_post_migrate, sender=self, weak=False, dispatch_uid="signalhooks.capture"
        )
        registry.setup()
        finish_rules()
        finish_relations()
        install_user_hooks()
        welcome.install()
        if conf.AUTODISCOVER:
            autodiscover_modules("hooks")
