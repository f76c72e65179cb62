from __future__ import annotations

import json
from io import StringIO

from django.core.management import call_command

from signalhooks import post_save, pre_delete
from signalhooks.registry import Event, Hook, registry
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
    post_save("testapp.Nope")(lambda **kw: None)
    assert "testapp.Nope (unresolved)" in run("list")


def test_command_without_hooks():
    for hook in registry.hooks():
        registry.remove(hook)
    assert run() == "No hooks registered.\n"
    assert json.loads(run("--json")) == {}
