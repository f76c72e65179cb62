from __future__ import annotations

import pytest
from django.core import checks
from django.core.checks import Error
from django.core.exceptions import ImproperlyConfigured

from signalhooks import counter, post_save, pre_delete, track
from signalhooks.checks import check_hooks, check_installed
from signalhooks.hooktypes import Event, Hook
from signalhooks.registry import registry
from tests.testapp.models import Article


def test_checks_unresolved_lazy_sender():
    # Declared while the models load (a models.py): the check reports what never resolved.
    registry.add(Hook(func=lambda **kw: None, event=Event.POST_SAVE, sender="testapp.Artikel"))
    registry.track("nosuchapp.Model", ["x"])
    errors = check_hooks()
    assert [e.id for e in errors] == ["signalhooks.E001", "signalhooks.E001"]
    assert "'testapp.Artikel', which is not an installed model" in errors[0].msg
    assert "tests.test_checks.test_checks_unresolved_lazy_sender.<locals>.<lambda>" in errors[0].msg
    assert "track('nosuchapp.Model', ...)" in errors[1].msg
    assert "INSTALLED_APPS" in errors[0].hint
    # Registered with Django's check framework.
    assert any(e.id == "signalhooks.E001" for e in checks.run_checks())


def test_checks_hook_check_callables_run_with_the_model():
    seen = []

    def check(model):
        seen.append(model)
        return [Error("bad rule", id="signalhooks.E099")]

    registry.add(Hook(func=lambda **kw: None, event=Event.POST_SAVE, sender=Article, check=check))
    assert [e.id for e in check_hooks()] == ["signalhooks.E099"]
    assert seen == [Article]


def test_checks_clean_project_has_no_errors():
    assert check_hooks() == []


def test_checks_lazy_sender_declared_after_start_up_is_refused_at_once():
    hooks = registry.hooks()
    with pytest.raises(
        ImproperlyConfigured,
        match=r"^@post_save\('testapp.Artikel'\): no installed model is called "
        r"'testapp.Artikel' \(did you mean 'testapp.Article'\?\)\. Name a model as "
        r"'app_label.ModelName' whose app is in INSTALLED_APPS\.$",
    ):
        post_save("testapp.Artikel")
    with pytest.raises(ImproperlyConfigured, match=r"^track\('nosuchapp.Model'\): .*\.$"):
        track("nosuchapp.Model", "x")
    assert registry.hooks() == hooks


def test_checks_app_not_installed(monkeypatch):
    # As if signalhooks' ready() never ran: the app is missing from INSTALLED_APPS.
    assert check_installed() == []
    monkeypatch.setattr(registry, "_ready", False)
    [error] = check_installed()
    assert error.id == "signalhooks.E002"
    assert "but 'signalhooks' is not in INSTALLED_APPS: none of them will ever run" in error.msg
    assert error.hint == "Add 'signalhooks' to INSTALLED_APPS."
    with pytest.raises(ImproperlyConfigured, match=r"^@pre_delete\(\.\.\.\) is used, but"):
        pre_delete(Article)
    with pytest.raises(ImproperlyConfigured, match=r"^counter\(\.\.\.\) is used, but"):
        counter(Article, "author", "x")
    monkeypatch.setattr(registry, "_hooks", [])
    assert check_installed() == []  # nothing declared, nothing lost
