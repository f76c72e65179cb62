"""signalhooks in a Django that nothing has patched (tests/unpatched_program.py)."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

from django.conf import settings

import signalhooks


def test_m2m_counters_rules_and_mail_in_an_unpatched_django():
    result = subprocess.run(
        [sys.executable, "-m", "tests.unpatched_program", settings.REDIS_URL],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    # Nothing made Field subscriptable, before or after signalhooks ran.
    assert seen["unpatched_before"] and seen["unpatched"]
    assert seen["m2m"] == {
        "entry.categories.add(news)": ["category:news", "entry:e"],
        "entry.categories.remove(news)": ["category:news", "entry:e"],
        "news.entries.add(entry, other)": ["category:news", "entry:e", "entry:o"],
        "news.entries.remove(other)": ["category:news", "entry:o"],
        "entry.categories.set([])": ["category:news", "entry:e"],
        "news.entries.set([entry])": ["category:news", "entry:e"],
        "news.entries.clear()": ["category:news", "entry:e"],
        "entry.categories.set([news])": ["category:news", "entry:e"],
        "entry.categories.clear()": ["category:news", "entry:e"],
    }
    assert seen["vote_count"] == 1 and seen["topic_key_gone"]
    assert seen["mails"] == [[["ada@example.com"], "Welcome to Unpatched, ada!"]]


def _runtime_subscripts(tree):
    """Yield the ``X[...]`` nodes evaluated at run time: not annotations, not TYPE_CHECKING."""
    skip = set()
    for node in ast.walk(tree):
        hidden = [getattr(node, "annotation", None), getattr(node, "returns", None)]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.append(node)
        for part in hidden:
            if part is not None:
                skip.update(id(sub) for sub in ast.walk(part))
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and id(node) not in skip:
            yield node


def test_no_generic_subscripted_at_run_time_only_works_patched():
    """A class made subscriptable by django_stubs_ext.monkeypatch() (the suite's process has
    it: django-tasks-db calls it) must not be subscripted at run time anywhere in src/."""
    root = Path(signalhooks.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        module = importlib.import_module(
            ".".join(("signalhooks", *path.relative_to(root).with_suffix("").parts)).removesuffix(
                ".__init__"
            )
        )
        for node in _runtime_subscripts(ast.parse(path.read_text())):
            if not isinstance(node.value, ast.Name | ast.Attribute):
                continue
            try:
                base = eval(ast.unparse(node.value), vars(module))  # a name or a dotted name
            except (NameError, AttributeError):
                continue  # a local variable: an item look-up, not a generic
            method = getattr(base, "__class_getitem__", None) if isinstance(base, type) else None
            if (getattr(method, "__module__", None) or "").startswith("django_stubs_ext"):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    assert found == [], "quote these (cast('Field[Any, Any]', ...)) or move them to annotations"


def test_the_generic_check_sees_a_patched_generic():
    """The check above can fail: Field is patched in this process, QuerySet is Django's own."""
    import django.db.models as models

    assert hasattr(models.Field, "__class_getitem__")  # django_stubs_ext.monkeypatch() ran
    assert models.Field.__class_getitem__.__module__.startswith("django_stubs_ext")
    assert not models.QuerySet.__class_getitem__.__module__.startswith("django_stubs_ext")
    tree = ast.parse("cast(Field[Any, Any], x)\ny: Field[Any, Any]\n")
    assert [ast.unparse(n) for n in _runtime_subscripts(tree)] == ["Field[Any, Any]"]
