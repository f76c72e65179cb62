from __future__ import annotations

import threading

import pytest
from debug_toolbar.toolbar import DebugToolbar
from django.contrib.auth.models import User
from django.core.cache import cache
from django.http import HttpResponse
from django.test import RequestFactory

from signalhooks import counter, invalidate, observe, post_save
from tests.cacheapp.models import Entry
from tests.db_threads import close_thread_connections
from tests.relatedapp.models import Post, Reply

pytestmark = pytest.mark.django_db(transaction=True)


def through_the_toolbar(view):
    """Run ``view`` the way DebugToolbarMiddleware does; return the signalhooks panel."""
    request = RequestFactory().get("/")
    toolbar = DebugToolbar(request, view)
    panels = toolbar.enabled_panels
    for panel in panels:
        panel.enable_instrumentation()
    try:
        response = toolbar.process_request(request)
    finally:
        for panel in reversed(panels):
            panel.disable_instrumentation()
    for panel in reversed(panels):
        panel.generate_stats(request, response)
    return toolbar.get_panel_by_id("SignalhooksPanel")


def test_panel_shows_hooks_invalidations_counters_and_mails():
    invalidate(Entry, keys=["entry:{slug}"], tags=["entries"])
    counter(Reply, "post", "comment_count")

    @post_save(Entry)
    def audit(**kwargs):
        pass

    post = Post.objects.create()
    cache.set("entry:a", "cached")

    def view(request):
        Entry.objects.create(title="A", slug="a")
        Reply.objects.create(post=post)
        User.objects.create_user("ada", "ada@example.com", "pw")
        return HttpResponse("ok")

    panel = through_the_toolbar(view)
    stats = panel.get_stats()
    labels = [hook["label"] for hook in stats["hooks"]]
    assert "invalidate(keys=['entry:{slug}'], tags=['entries'])" in labels
    assert f"{audit.__module__}.{audit.__qualname__}" in labels
    assert any(
        hook["kind"] == "counter" and hook["model"] == "relatedapp.Reply" for hook in stats["hooks"]
    )
    assert stats["flushes"][0] == {
        "cache": "default",
        "keys": ["entry:a"],
        "tags": ["entries"],
        "patterns": [],
    }
    assert cache.get("entry:a") is None
    assert stats["failures"] == []
    assert stats["counters"] == [
        {"field": "relatedapp.Post.comment_count", "pk": str(post.pk), "delta": 1}
    ]
    ada = User.objects.get(username="ada")
    assert stats["mails"] == [str(ada.pk)]
    assert panel.nav_subtitle.startswith(f"{len(labels)} hook runs, ")

    html = panel.content
    assert "<td>entry:a</td><td>entries</td><td></td><td>succeeded</td>" in html
    assert "<td>relatedapp.Post.comment_count</td>" in html and "<td>+1</td>" in html
    assert f"For users {ada.pk}" in html
    assert "invalidate(keys=[&#x27;entry:{slug}&#x27;]" in html  # escaped
    assert observe.observers == []


def test_panel_of_a_quiet_request():
    panel = through_the_toolbar(lambda request: HttpResponse("ok"))
    assert panel.nav_subtitle == "0 hook runs, 0 invalidated"
    html = panel.content
    assert "No hook ran." in html and "Nothing invalidated." in html
    assert "No counter moved." in html and "<p>None.</p>" in html


def test_panel_says_when_a_flush_failed(request):
    server, _ = request.getfixturevalue("flaky")
    invalidate(Entry, keys=["entry:{slug}"], cache="flaky")
    server.stop()

    def view(request):
        Entry.objects.create(title="B", slug="b")  # the save succeeds, the flush does not
        return HttpResponse("ok")

    panel = through_the_toolbar(view)
    stats = panel.get_stats()
    assert stats["flushes"] == []
    [failure] = stats["failures"]
    assert "invalidating cache 'flaky' failed" in failure and "entry:b" in failure
    assert panel.nav_subtitle == "1 hook run, 0 invalidated"
    assert "<strong>failed</strong> (kept for a retry)" in panel.content


def test_panel_leaves_out_other_threads(flaky):
    invalidate(Entry, keys=["entry:{slug}"])
    invalidate(Entry, keys=["gone:{slug}"], cache="flaky")
    flaky[0].stop()  # that thread's flush on "flaky" fails
    counter(Reply, "post", "comment_count")
    post = Post.objects.create()

    def elsewhere():
        try:
            Entry.objects.create(title="T", slug="thread")
            Reply.objects.create(post=post)
            User.objects.create_user("bob", "bob@example.com", "pw")
        finally:
            close_thread_connections()

    def view(request):
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
        return HttpResponse("ok")

    stats = through_the_toolbar(view).get_stats()
    assert stats["hooks"] == [] and stats["flushes"] == [] and stats["failures"] == []
    assert stats["counters"] == [] and stats["mails"] == []
    assert Post.objects.get().comment_count == 1  # it did happen, elsewhere
