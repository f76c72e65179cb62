from __future__ import annotations

from django.core import checks
from django.core.checks import Error

from signalhooks import post_save, track
from signalhooks.checks import check_hooks
from signalhooks.registry import Event, Hook, registry
from tests.testapp.models import Article


def test_checks_unresolved_lazy_sender():
    post_save("testapp.Artikel")(lambda **kw: None)
    track("nosuchapp.Model", "x")
    errors = check_hooks()
    assert [e.id for e in errors] == ["signalhooks.E001", "signalhooks.E001"]
    assert "'testapp.Artikel', which is not an installed model" in errors[0].msg
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
