"""System checks of database capture: the setting, the databases, the installed triggers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from signalhooks.conf import conf

from .install import MODES, enabled, status, vendor
from .spec import problems


def check_capture(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report a wrong ``CAPTURE``, a database without triggers, declarations they cannot keep."""
    # A CAPTURE that is neither mode is the settings check's to report (E041).
    if conf.CAPTURE not in MODES or not enabled():
        return []
    errors: list[CheckMessage] = []
    for alias in connections:  # a declaration's error once, not once per database
        errors.extend(connection_errors(connections[alias]))
    return list({error.msg: error for error in errors}.values())


def connection_errors(connection: BaseDatabaseWrapper) -> list[CheckMessage]:
    """Return why database mode cannot work on ``connection``: its vendor, declarations."""
    try:
        vendor(connection)
    except ImproperlyConfigured as error:
        return [Error(str(error), id="signalhooks.E061")]
    return [
        Error(
            message,
            hint="Declare it on a model whose own table holds the fields, or use "
            'SIGNALHOOKS["CAPTURE"] = "python".',
            id="signalhooks.E062",
        )
        for message in problems(connection)
    ]


def check_triggers(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Report missing or outdated triggers (a database check: ``check --database``, migrate)."""
    if conf.CAPTURE != "database":
        return []
    warnings: list[CheckMessage] = []
    for alias in databases or ():
        try:
            states = [s for s in status(alias) if s.state != "current"]
        except (ImproperlyConfigured, ValueError):
            continue  # reported by check_capture
        for state in states:
            warnings.append(
                Warning(
                    f"Database {alias!r}: signalhooks trigger {state.name} on {state.table} "
                    f"is {state.state}; counters, totals and touches of that table are "
                    "not kept as declared.",
                    hint="Run manage.py migrate: it installs the triggers "
                    "(manage.py signalhooks triggers lists them).",
                    id="signalhooks.W060",
                )
            )
    return warnings
