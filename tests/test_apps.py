from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.test import override_settings

from signalhooks.registry import registry
from tests.testapp import hooks as testapp_hooks
from tests.testapp.models import Author

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.django_db
def test_autodiscover_imports_hooks_modules():
    Author.objects.create(name="ann")
    assert testapp_hooks.NEW_AUTHORS[-1] == "ann"


def test_autodiscover_can_be_turned_off(tmp_path):
    # In-process: ready() again with autodiscovery off registers nothing new.
    before = registry.hooks()
    with override_settings(SIGNALHOOKS={"AUTODISCOVER": False}):
        apps.get_app_config("signalhooks").ready()
    assert registry.hooks() == before
    # A fresh process with AUTODISCOVER off never imports tests/testapp/hooks.py. It runs
    # in tmp_path: the system checks of JSONField models open the (non-test) SQLite
    # databases, which would otherwise be created as files in the working tree.
    listing = subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "signalhooks",
            "--json",
            "--settings=tests.settings_no_autodiscover",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    names = [h["name"] for hooks in json.loads(listing.stdout).values() for h in hooks]
    assert "tests.testapp.hooks.remember_new_author" not in names
