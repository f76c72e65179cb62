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


# -- mistakes stop start-up, wherever they are declared ------------------------------------

MODELS = """\
from django.db import models

from signalhooks import counter, invalidate, post_save


class Parent(models.Model):
    name = models.CharField(max_length=10, default="")
    child_count = models.IntegerField(default=0)


class Child(models.Model):
    parent = models.ForeignKey(Parent, on_delete=models.CASCADE)
    slug = models.CharField(max_length=10, default="")


"""

SETTINGS = """\
SECRET_KEY = "start-up"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", {apps}]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}}}
CACHES = {{"default": {{"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}}}
SIGNALHOOKS = {{"WELCOME_MAIL": False}}
"""


def start(tmp_path, models="", hooks="", apps='"signalhooks", "startapp"', code=None):
    """Start a project whose app ``startapp`` declares ``models`` and ``hooks``; return it.

    Runs ``manage.py check``, or the Python ``code`` after ``django.setup()``.
    """
    app = tmp_path / "startapp"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(MODELS + models)
    (app / "hooks.py").write_text("from signalhooks import counter, invalidate\n\n" + hooks)
    (tmp_path / "startsettings.py").write_text(SETTINGS.format(apps=apps))
    command = ["-m", "django", "check"] if code is None else ["-c", code]
    return subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
            "DJANGO_SETTINGS_MODULE": "startsettings",
        },
        cwd=tmp_path,
    )


def test_startup_refuses_a_rule_in_a_hooks_module(tmp_path):
    # hooks modules are imported in ready(), before apps.ready: no `check` needed.
    done = start(
        tmp_path, hooks='from .models import Child\n\ninvalidate(Child, keys=["c:{slgu}"])\n'
    )
    assert done.returncode != 0
    assert (
        "ImproperlyConfigured: startapp.Child invalidate(keys=['c:{slgu}']) "
        f"({tmp_path / 'startapp' / 'hooks.py'}:5): the template field 'slgu' is not a concrete "
        "field of startapp.Child. Use one of: pk, id, parent_id, slug"
    ) in done.stderr


def test_startup_refuses_a_rule_in_models_py(tmp_path):
    done = start(tmp_path, models='invalidate(Child, keys=["c:{pk}"], cache="nope")\n')
    assert done.returncode != 0
    assert (
        "ImproperlyConfigured: signalhooks: these invalidate() rules cannot work:\n"
        "  startapp.Child invalidate(keys=['c:{pk}']) "
        f"({tmp_path / 'startapp' / 'models.py'}:16): the cache alias 'nope' is not in "
        "settings.CACHES. Define 'nope' in settings.CACHES, or pass cache= one of the "
        "configured aliases: 'default'."
    ) in done.stderr


def test_startup_names_the_wrong_counter_and_where_it_is(tmp_path):
    # A bad counter() in models.py, a valid one on the same foreign key in hooks.py:
    # start-up stops naming the models.py declaration, never the hooks.py one.
    done = start(
        tmp_path,
        models='counter(Child, "parent", "name")\n',
        hooks='counter("startapp.Child", "parent", "child_count")\n',
    )
    assert done.returncode != 0
    assert (
        "ImproperlyConfigured: signalhooks: these counter(), total() and touch() declarations "
        "cannot work:\n"
        f"  counter(startapp.Child, 'parent', 'name') ({tmp_path / 'startapp' / 'models.py'}:16)"
        ": startapp.Parent.name is a CharField, not an integer field."
    ) in done.stderr
    assert "hooks.py" not in done.stderr


def test_startup_valid_declarations_pass(tmp_path):
    done = start(
        tmp_path,
        models='counter(Child, "parent", "child_count")\n',
        hooks='from .models import Child\n\ninvalidate(Child, keys=["c:{slug}"])\n',
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_startup_without_the_app_installed_says_so(tmp_path):
    # Hooks declared while the models load: a system check; after start-up: an error.
    done = start(
        tmp_path,
        models="@post_save(Child)\ndef noted(**kwargs): ...\n",
        apps='"startapp"',
        code=(
            "import django; django.setup()\n"
            "from django.core.management import call_command\n"
            "from signalhooks import post_save\n"
            "try:\n"
            "    call_command('check')\n"
            "except Exception as error:\n"
            "    print(error)\n"
            "post_save('startapp.Child')\n"
        ),
    )
    assert done.returncode != 0
    assert (
        "(signalhooks.E002) 1 hook(s) are declared (the first: startapp.models.noted for "
        f"startapp.Child at {tmp_path / 'startapp' / 'models.py'}:16), but 'signalhooks' is "
        "not in INSTALLED_APPS: none of them will ever run."
    ) in done.stdout
    assert (
        "ImproperlyConfigured: @post_save(...) is used, but 'signalhooks' is not in "
        "INSTALLED_APPS: no hook, rule or counter would ever run."
    ) in done.stderr
