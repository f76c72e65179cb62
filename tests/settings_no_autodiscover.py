from __future__ import annotations

from tests.settings import *  # noqa: F403

SIGNALHOOKS = {"AUTODISCOVER": False}
