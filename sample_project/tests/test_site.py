"""The sample site through Django's test client: what a visitor and the cache see."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from tests.redis_server import free_port

from sample_project.blog import pages
from sample_project.blog.models import Comment, Post
from sample_project.devtools.models import Invalidation, Mail
from sample_project.settings import redis_problem
from signalhooks import breaker, cache_invalidated, is_cached

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
HELLO = "hello-signalhooks"


def count_on(html: str, slug: str) -> int:
    """Return the comment count the page shows for the post ``slug``."""
    match = re.search(rf'data-post="{slug}".*?data-comment-count="(\d+)"', html, re.S)
    assert match, f"post {slug} is not on the page"
    return int(match[1])


@pytest.fixture
def flushes():
    seen = []
    cache_invalidated.connect(
        lambda sender, **kw: seen.append(kw), weak=False, dispatch_uid="test-flushes"
    )
    yield seen
    cache_invalidated.disconnect(dispatch_uid="test-flushes")


def user(name):
    return get_user_model()._default_manager.get(username=name)


def test_register_queues_the_welcome_mail_with_an_activation_link(client, deliver_mail):
    password = "a-long-Pass-phrase-42"
    response = client.post(
        "/accounts/register/",
        {
            "username": "erin",
            "email": "erin@example.com",
            "password1": password,
            "password2": password,
        },
        follow=True,
    )

    assert response.redirect_chain == [("/accounts/login/", 302)]
    assert "The welcome mail to erin@example.com has your activation link" in (
        response.content.decode()
    )
    assert not user("erin").is_active
    assert not client.login(username="erin", password=password)
    assert not Mail.objects.exists()  # nothing sent inside the request: it is a queued task
    deliver_mail()
    mails = list(Mail.objects.filter(to="erin@example.com"))
    assert [m.subject for m in mails] == ["Welcome to Signalhooks Sample Blog, erin!"]
    assert "Hello erin," in mails[0].body
    assert "<strong>Signalhooks Sample Blog</strong>" in mails[0].html
    mailbox = client.get("/dev/mailbox/").content.decode()
    assert "Welcome to Signalhooks Sample Blog, erin!" in mailbox
    assert "Hello erin," in client.get(f"/dev/mailbox/{mails[0].pk}/").content.decode()

    [link] = re.findall(r"http://127\.0\.0\.1:8000(/accounts/activate/\S+)", mails[0].body)
    activated = client.get(link, follow=True)
    assert activated.redirect_chain == [("/accounts/login/", 302)]
    assert "Your account is active: you can log in now." in activated.content.decode()
    assert user("erin").is_active and client.login(username="erin", password=password)
    assert client.get(link).status_code == 400  # used once


def test_register_refuses_taken_email(client, seeded):
    form = {
        "username": "alice2",
        "email": "ALICE@sample.signalhooks.test",
        "password1": "a-long-Pass-phrase-42",
        "password2": "a-long-Pass-phrase-42",
    }
    response = client.post("/accounts/register/", form)

    assert response.status_code == 200
    assert "Someone registered with this address already." in response.content.decode()
    assert not get_user_model()._default_manager.filter(username="alice2").exists()


def test_comment_updates_count_and_refreshes_cached_pages(client, seeded, flushes, deliver_mail):
    assert count_on(client.get("/").content.decode(), HELLO) == 2
    client.get(f"/posts/{HELLO}/")
    assert is_cached("home") and is_cached(f"post:{HELLO}")
    # The home page really comes from the cache: a change made behind signalhooks'
    # back (raw SQL) does not show.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE blog_post SET title = 'Edited in SQL' WHERE slug = %s", [HELLO])
    assert "Edited in SQL" not in client.get("/").content.decode()

    client.force_login(user("bob"))
    response = client.post(f"/posts/{HELLO}/", {"body": "Counted at once."})

    assert response.status_code == 302 and response["Location"] == f"/posts/{HELLO}/"
    assert Post.objects.get(slug=HELLO).comment_count == 3
    assert not is_cached("home") and not is_cached(f"post:{HELLO}")
    assert [sorted(f["keys"]) for f in flushes] == [["home", f"post:{HELLO}"]]
    home = client.get("/").content.decode()
    assert count_on(home, HELLO) == 3 and "Edited in SQL" in home
    assert "Counted at once." in client.get(f"/posts/{HELLO}/").content.decode()
    # notify_author, an on_commit hook, queued the mail to the post's author; the worker
    # sends it, not the request.
    assert not Mail.objects.filter(subject__contains="commented").exists()
    deliver_mail()
    assert Mail.objects.filter(
        to="alice@sample.signalhooks.test", subject="bob commented on “Edited in SQL”"
    ).exists()


def test_comment_requires_login(client, seeded):
    response = client.post(f"/posts/{HELLO}/", {"body": "Anonymous"})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert Post.objects.get(slug=HELLO).comment_count == 2


def test_slug_change_invalidates_old_and_new_keys(client, seeded, flushes):
    client.get(f"/posts/{HELLO}/")
    cache.set("post:hello-again", "a stale page left under the new slug")
    client.force_login(user("alice"))

    response = client.post(
        f"/posts/{HELLO}/edit/",
        {"title": "Hello again", "slug": "hello-again", "body": "Moved.", "published": "on"},
    )

    assert response.status_code == 302 and response["Location"] == "/posts/hello-again/"
    assert not is_cached(f"post:{HELLO}") and not is_cached("post:hello-again")
    assert sorted(flushes[-1]["keys"]) == ["home", "post:hello-again", f"post:{HELLO}"]
    assert client.get(f"/posts/{HELLO}/").status_code == 404
    assert "Moved." in client.get("/posts/hello-again/").content.decode()


def test_post_edit_only_by_author(client, seeded):
    client.force_login(user("bob"))

    response = client.post(f"/posts/{HELLO}/edit/", {"title": "Mine now", "body": "x"})

    assert response.status_code == 404
    assert Post.objects.get(slug=HELLO).title == "Hello, signalhooks"


def test_new_post_gets_slug_and_shows_on_cached_home(client, seeded):
    client.get("/")
    client.force_login(user("carol"))

    draft = {"title": "Hello, signalhooks", "body": "Again."}  # no "published": a draft
    response = client.post("/posts/new/", draft)

    assert response["Location"] == "/posts/hello-signalhooks-2/"  # the fill_slug hook
    assert 'data-post="hello-signalhooks-2"' not in client.get("/").content.decode()
    client.post("/posts/hello-signalhooks-2/edit/", {**draft, "published": "on"})
    assert count_on(client.get("/").content.decode(), "hello-signalhooks-2") == 0


def test_author_page_cached_under_tag(client, seeded):
    first = client.get("/authors/alice/").content.decode()
    assert first == client.get("/authors/alice/").content.decode()  # served from the cache

    post = Post.objects.get(slug=HELLO)
    post.title = "Retitled"
    post.save()

    assert "Retitled" in client.get("/authors/alice/").content.decode()


def test_invalidations_panel_lists_flushes(client, seeded):
    Comment.objects.create(post=Post.objects.get(slug=HELLO), author=user("bob"), body="Hi")

    row = Invalidation.objects.first()
    assert row is not None and sorted(row.keys) == ["home", f"post:{HELLO}"]
    assert row.tags == [f"author:{user('alice').pk}", "posts"]  # "posts": the sidebar
    home = client.get("/").content.decode()
    panel = home[home.index('id="invalidations-panel"') :]
    assert f"post:{HELLO}" in panel
    assert f"post:{HELLO}" in client.get("/dev/invalidations/").content.decode()


def test_invalidations_panel_keeps_the_newest(seeded):
    post = Post.objects.get(slug=HELLO)
    for n in range(Invalidation.KEEP + 5):
        post.slug = f"hello-{n}"
        post.save()

    assert Invalidation.objects.count() == Invalidation.KEEP
    assert f"post:hello-{Invalidation.KEEP + 4}" in Invalidation.objects.first().keys


def test_seed_is_idempotent(seeded, deliver_mail):
    from sample_project.blog.seed import seed

    again = seed()

    assert not again
    assert (Post.objects.count(), Comment.objects.count()) == (3, 5)
    deliver_mail()
    assert Mail.objects.count() == 4  # one welcome mail per seeded user, no comment mails


def test_demo_walkthrough_prints_what_hooks_did():
    first, second = io.StringIO(), io.StringIO()

    call_command("demo", stdout=first)
    call_command("demo", stdout=second)

    out = first.getvalue()
    assert "Seeded 4 users, 3 posts, 5 comments" in out
    assert "user_registered sent for dora" in out
    assert (
        "mail to dora@sample.signalhooks.test (sent by the task worker): "
        "'Welcome to Signalhooks Sample Blog, dora!'" in out
    )
    assert "comment_count 2 -> 3 (one F() UPDATE)" in out
    assert "keys deleted: home, post:hello-signalhooks" in out
    assert "inside the transaction: 0 flushes" in out and "comment_count 3 -> 5" in out
    assert "keys deleted: home, post:doras-first-post, post:doras-notes" in out
    assert "3 comments deleted; comment_count 5 -> 2" in out
    assert "'Hello, signalhooks': comment_count 0 -> 2" in out
    again = second.getvalue()
    assert "Seed data already there" in again and "0. Remove dora" in again
    assert "deleted 1 auth.User, 1 blog.Post" in again
    assert get_user_model()._default_manager.count() == 5
    assert Post.objects.count() == 4 and Post.objects.get(slug=HELLO).comment_count == 2


def test_redis_problem_names_the_failure(settings):
    assert redis_problem(settings.REDIS_URL) is None
    assert "ConnectionError" in (redis_problem(f"redis://127.0.0.1:{free_port()}/0") or "")


def test_no_redis_falls_back_once_with_a_message():
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "SAMPLE_REDIS_WARNED")
    }
    env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    script = (
        "import importlib, sample_project.settings as s; "
        "print(s.CACHES['default']['BACKEND']); importlib.reload(s)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    check = subprocess.run(
        [sys.executable, "sample_project/manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.core.cache.backends.locmem.LocMemCache"
    assert result.stderr.count("No Redis answered at redis://127.0.0.1:") == 1
    assert check.returncode == 0, check.stderr
    assert "System check identified no issues" in check.stdout


# -- what a person reads ------------------------------------------------------------------


def test_invalidations_say_which_save_caused_each_flush(client, seeded):
    client.force_login(user("bob"))
    client.post(f"/posts/{HELLO}/", {"body": "Which save was it?"})
    comment = Comment.objects.get(body="Which save was it?")

    row = Invalidation.objects.first()
    assert row.cause == f"comment #{comment.pk} created ({comment})"
    page = client.get("/dev/invalidations/").content.decode()
    assert f'<td class="cause">comment #{comment.pk} created (bob on' in page
    home = client.get("/").content.decode()
    assert f"after comment #{comment.pk} created" in home[home.index('id="invalidations-panel"') :]

    post = Post.objects.get(slug=HELLO)
    post.title = "Retitled"
    post.save()
    assert Invalidation.objects.first().cause == f"post #{post.pk} saved (Retitled)"
    pk = post.pk
    post.delete()  # its comments go first (the cascade), each named once
    cause = Invalidation.objects.first().cause
    assert cause.endswith(f"post #{pk} deleted (Retitled)")
    assert f"comment #{comment.pk} deleted (bob on Retitled: Which save was it?)" in cause


def test_sidebar_has_a_legend_for_keys_and_tags(client, seeded):
    home = client.get("/").content.decode()
    legend = home[home.index('id="legend"') :]
    assert '<span class="key">key</span> a cache key deleted' in legend
    assert '<span class="key tag">tag</span> a tag whose generation was bumped' in legend


def sidebar(html: str) -> str:
    start = html.index('id="sidebar-recent"')
    return html[start : html.index("</div>", start)]


def test_sidebar_cached_by_the_template_tag_until_a_post_changes(client, seeded):
    first = sidebar(client.get("/").content.decode())
    assert f'data-sidebar-post="{HELLO}"' in first
    assert is_cached("sidebar:recent", tags=["posts"])
    # Behind signalhooks' back (the plain base manager runs no rule): still cached,
    # on every page, since the sidebar is the same fragment everywhere.
    Post._base_manager.filter(slug=HELLO).update(title="Sneaky")
    assert sidebar(client.get("/authors/alice/").content.decode()) == first
    assert "Sneaky" not in first
    # A real save bumps the tag "posts": the next page renders the sidebar again.
    post = Post.objects.get(slug=HELLO)
    post.title = "Retitled"
    post.save()
    assert not is_cached("sidebar:recent", tags=["posts"])
    again = sidebar(client.get("/").content.decode())
    assert ">Retitled</a>" in again and is_cached("sidebar:recent", tags=["posts"])


def test_sidebar_rendered_when_redis_is_down(client, seeded, settings):
    from sample_project.settings import CACHES

    dead = {**CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    dead["OPTIONS"] = {**dead.get("OPTIONS", {}), "SOCKET_CONNECT_TIMEOUT": 0.3}
    settings.CACHES = {**CACHES, "default": dead}
    try:
        html = client.get("/").content.decode()
    finally:
        breaker.reset()  # the next tests' Redis is up: no open breaker for them
    assert f'data-sidebar-post="{HELLO}"' in sidebar(html)


def test_admin_link_only_for_staff(client, seeded):
    assert 'href="/admin/"' not in client.get("/").content.decode()
    client.force_login(user("alice"))
    assert 'href="/admin/"' not in client.get("/").content.decode()
    client.force_login(user("admin"))
    assert 'href="/admin/"' in client.get("/").content.decode()


def test_times_show_their_zone(client, seeded, settings):
    settings.TIME_ZONE = "Europe/Paris"
    Comment.objects.create(post=Post.objects.get(slug=HELLO), author=user("bob"), body="Hi")
    home = client.get("/").content.decode()
    assert re.search(r"updated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d CET", home)
    assert re.search(r"rendered \d\d:\d\d:\d\d CET", home)
    page = client.get("/dev/invalidations/").content.decode()
    assert re.search(r'<td class="meta">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CET</td>', page)
    assert re.search(r"\d\d:\d\d:\d\d CET", client.get("/dev/mailbox/").content.decode())


def test_debug_toolbar_shows_the_signalhooks_panel_in_development(client, seeded, settings):
    settings.DEBUG = True  # pytest-django runs with DEBUG off; the site's default is on
    client.force_login(user("bob"))
    response = client.post(f"/posts/{HELLO}/", {"body": "Seen by the toolbar."}, follow=False)
    assert response.status_code == 302
    page = client.get(f"/posts/{HELLO}/").content.decode()
    assert 'id="djDebug"' in page and "SignalhooksPanel" in page
    # The panel of the comment's request: the counter moved, the post's keys went.
    store = __import__("debug_toolbar.store", fromlist=["get_store"]).get_store()
    request_ids = list(store.request_ids())
    panels = [store.panel(request_id, "SignalhooksPanel") for request_id in request_ids]
    moved = [p for p in panels if p.get("counters")]
    assert moved, panels
    assert moved[-1]["counters"][0]["field"] == "blog.Post.comment_count"
    assert "home" in moved[-1]["flushes"][0]["keys"]


def test_debug_toolbar_starts_collapsed_on_a_first_visit(client, seeded, settings):
    settings.DEBUG = True
    assert settings.DEBUG_TOOLBAR_CONFIG["SHOW_COLLAPSED"] is True
    page = client.get("/").content.decode()
    # toolbar.js shows the handle only when the browser has no choice stored yet.
    assert re.search(r'id="djDebug"[^>]*data-default-show="false"', page, re.S)


def test_post_page_counts_a_comment_committed_before_its_lookup(seeded):
    post = Post.objects.get(slug=HELLO)  # what the view reads before the cached part
    count = post.comment_count
    # Another request's comment commits (its invalidation runs) before the lookup.
    Comment.objects.create(post_id=post.pk, author=user("bob"), body="Between read and lookup")
    html = pages.post_html(post.slug)
    assert f'data-comment-count="{count + 1}"' in html
    assert html.count('<div class="comment">') == count + 1


def test_cached_parts_read_their_rows_inside(client, seeded, settings):
    # In DEBUG, a compute holding a row loaded before its lookup warns (StaleReadWarning),
    # and warnings are errors here: every cached part of the site computes without one.
    settings.DEBUG = True
    for path in ("/", f"/posts/{HELLO}/", "/authors/alice/"):
        assert client.get(path).status_code == 200
