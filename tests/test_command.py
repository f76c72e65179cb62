from __future__ import annotations

import gc
import json
from functools import partial
from io import StringIO

from django.contrib.auth.models import User
from django.core.management import call_command

from signalhooks import (
    cache_invalidated,
    post_save,
    pre_delete,
    user_deleted,
    user_registered,
    user_updated,
)
from signalhooks.hooktypes import Event, Hook
from signalhooks.registry import registry
from tests.testapp.models import Article, Tag


def run(*args):
    out = StringIO()
    call_command("signalhooks", *args, stdout=out)
    return out.getvalue()


def is_published(article):
    return article.status == "published"


def test_command_lists_hooks_with_conditions_and_source():
    @post_save(
        Article,
        created=False,
        changed="title",
        when=is_published,
        on_commit=True,
        raw=True,
        priority=3,
    )
    def notify(**kwargs):
        pass

    @pre_delete(Tag)
    def bye(**kwargs):
        pass

    registry.add(
        Hook(
            func=bye,
            event=Event.POST_SAVE,
            sender=Tag,
            kind="rule",
            label="invalidate(keys=['tag:{pk}'])",
            details={"keys": ["tag:{pk}"]},
        )
    )
    output = run()
    assert "testapp.Article" in output and "testapp.Tag" in output
    line = next(line for line in output.splitlines() if "notify" in line)
    assert "post_save" in line and "priority=3" in line and "on_commit" in line
    assert "created=False" in line and "changed=['title']" in line
    assert "when='is_published'" in line and "raw=True" in line
    assert f"tests/test_command.py:{notify.__code__.co_firstlineno}" in line
    assert "keys=['tag:{pk}']" in output

    data = json.loads(run("--json"))
    [described] = [h for h in data["testapp.Article"] if h["name"].endswith("notify")]
    assert described["conditions"] == {
        "created": False,
        "changed": ["title"],
        "when": "is_published",
        "raw": True,
    }
    assert described["on_commit"] is True and described["event"] == "post_save"
    assert [h["kind"] for h in data["testapp.Tag"]] == ["rule", "hook"]


def test_command_list_subcommand_and_unresolved():
    # Declared while the models load (a models.py): listed as unresolved.
    registry.add(Hook(func=lambda **kw: None, event=Event.POST_SAVE, sender="testapp.Nope"))
    assert "testapp.Nope (unresolved)" in run("list")


def test_command_without_hooks():
    for hook in registry.hooks():
        registry.remove(hook)
    output = run()
    assert output.startswith("No hooks registered.\n")
    # The built-in welcome mail receivers are still there.
    assert (
        "signal:user_registered\n  user_registered   receiver signalhooks.welcome._welcome"
        in output
    )
    assert "receiver signalhooks.welcome._forget_welcome" in output
    assert list(json.loads(run("--json"))) == ["signal:user_registered", "signal:user_deleted"]


def on_user_updated(sender, user, changes, **kwargs):
    pass


class Auditor:
    def on_deleted(self, sender, user, **kwargs):
        pass


def test_command_lists_receivers_of_user_and_cache_signals():
    auditor = Auditor()

    def gone(**kwargs):
        pass

    user_updated.connect(on_user_updated, dispatch_uid="t-updated")
    user_deleted.connect(auditor.on_deleted, sender=User, dispatch_uid="t-deleted")
    user_registered.connect(partial(on_user_updated, changes={}), weak=False, dispatch_uid="t-p")
    user_registered.connect(gone, dispatch_uid="t-gone")
    cache_invalidated.connect(on_user_updated, sender="default", dispatch_uid="t-cache")
    cache_invalidated.connect(on_user_updated, sender=Tag, dispatch_uid="t-other")
    try:
        del gone
        gc.collect()
        output = run()
        data = json.loads(run("--json"))
    finally:
        for signal, uid in [
            (user_updated, "t-updated"),
            (user_deleted, "t-deleted"),
            (user_registered, "t-p"),
            (user_registered, "t-gone"),
            (cache_invalidated, "t-cache"),
            (cache_invalidated, "t-other"),
        ]:
            signal.disconnect(dispatch_uid=uid)
    source = f"tests/test_command.py:{on_user_updated.__code__.co_firstlineno}"
    updated = next(line for line in output.splitlines() if line.startswith("  user_updated"))
    assert "receiver tests.test_command.on_user_updated  [sender=any]" in updated
    assert updated.endswith(source)
    assert "receiver tests.test_command.Auditor.on_deleted  [sender=auth.User]" in output
    registered = [h["name"] for h in data["signal:user_registered"]]
    assert registered[0] == "signalhooks.welcome._welcome"
    assert registered[1].startswith("functools.partial(")  # no name: its repr
    assert len(registered) == 2  # the collected receiver is left out
    flushes = data["signal:cache_invalidated"]
    assert [h["conditions"]["sender"] for h in flushes] == ["'default'", "another object"]
    assert flushes[0]["source"].endswith(source) and flushes[0]["kind"] == "receiver"
