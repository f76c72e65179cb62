"""One real browser: Chromium, driven by Playwright, against the live site.

Chromium is ``CHROMIUM=``, else the first on PATH (chromium.py). Without one the
browser test is skipped with a message saying how to get it, except under ``CI=true``,
where it fails: CI must never pass without it. The screenshots go to a temporary
directory; ``make screenshots`` sets ``SIGNALHOOKS_SCREENSHOTS=docs/images`` to retake
the README's.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from sample_project.blog.models import Post
from sample_project.devtools.models import Mail
from sample_project.tests.chromium import HOW_TO_GET, find_chromium

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HELLO = "hello-signalhooks"


def chromium_or_skip() -> str:
    """Return the Chromium to drive; skip (fail under ``CI=true``) when there is none."""
    found = find_chromium()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {HOW_TO_GET}")
        pytest.skip(HOW_TO_GET)
    return found


@pytest.fixture
def images(tmp_path):
    """Where the screenshots go: ``$SIGNALHOOKS_SCREENSHOTS`` (make screenshots), else tmp."""
    directory = Path(os.environ.get("SIGNALHOOKS_SCREENSHOTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def show_the_panel(page: Any, base: str, images: Path) -> None:
    """Comment with django-debug-toolbar on and open the signalhooks panel of that POST."""
    page.goto(f"{base}/posts/{HELLO}/")
    # A first visit: the toolbar is collapsed to its handle, clear of the sidebar.
    handle = page.locator("#djDebugToolbarHandle")
    expect(handle).to_be_visible()
    expect(page.locator("#djDebugToolbar")).to_be_hidden()
    page.fill("#id_body", "Seen by the debug toolbar.")
    page.click("main form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Comment added.")
    expect(page.locator("#djDebugToolbar")).to_be_hidden()  # still as the visitor left it
    page.click("#djShowToolBarButton")
    expect(page.locator("#djDebugToolbar")).to_be_visible()
    expect(handle).to_be_hidden()
    # The toolbar shows the page the comment redirected to; its history has the POST.
    page.click("#djdt-HistoryPanel a")
    post = page.locator(
        "#HistoryPanel tr[data-request-id]", has=page.get_by_text("POST", exact=True)
    )
    highlighted = re.compile("djdt-highlighted")
    # The panel loads its rows by fetch and may redraw them: a click on a row being
    # replaced is lost, so wait for the page to settle and click again if needed.
    for _ in range(4):
        page.wait_for_load_state("networkidle")
        post.locator("button.switchHistory").click()
        try:
            expect(post).to_have_class(highlighted, timeout=2_500)
            break
        except AssertionError:
            continue
    expect(post).to_have_class(highlighted)  # the sidebar is the POST's
    # The switch replaces the sidebar: click the POST's panel link, not the old one.
    page.wait_for_load_state("networkidle")
    expect(page.locator("#djdt-SignalhooksPanel")).not_to_contain_text("0 hook runs")
    page.click("#djdt-SignalhooksPanel a")
    panel = page.locator("#SignalhooksPanel")
    expect(panel).to_contain_text("blog.Post.comment_count")
    expect(panel).to_contain_text("succeeded")
    expect(panel).to_contain_text(f"post:{HELLO}")
    page.screenshot(path=images / "debug-toolbar.png")


def browse(base: str, chromium: str, images: Path, debug_on: Any = None) -> None:
    """Register, read the welcome mail, comment, and see the count on the cached home page."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.set_default_timeout(15_000)
            count = page.locator(f'[data-post="{HELLO}"] .count')

            page.goto(f"{base}/")
            expect(count).to_have_text("2 comments")  # and "home" is now cached

            page.goto(f"{base}/accounts/register/")
            page.fill("#id_username", "erin")
            page.fill("#id_email", "erin@example.com")
            page.fill("#id_password1", "a-long-Pass-phrase-42")
            page.fill("#id_password2", "a-long-Pass-phrase-42")
            page.click("main form button[type=submit]")
            expect(page.locator(".messages")).to_contain_text("has your activation link")

            page.goto(f"{base}/dev/mailbox/")
            expect(page.locator("#mailbox")).to_contain_text(
                "Welcome to Signalhooks Sample Blog, erin!"
            )
            page.screenshot(path=images / "mailbox.png")

            # The mail's link names the demo's host (SITE_URL): follow its path here.
            page.click("#mailbox a >> text=Welcome to Signalhooks Sample Blog, erin!")
            link = re.search(r"/accounts/activate/\S+", page.locator("pre").inner_text())
            assert link is not None
            page.goto(f"{base}{link.group()}")
            expect(page.locator(".messages")).to_contain_text("Your account is active")
            page.fill("#id_username", "erin")
            page.fill("#id_password", "a-long-Pass-phrase-42")
            page.click("main form button[type=submit]")

            page.goto(f"{base}/posts/{HELLO}/")
            page.fill("#id_body", "Written in a real browser: watch the count.")
            page.click("main form button[type=submit]")
            expect(page.locator(".messages")).to_contain_text("Comment added.")

            page.goto(f"{base}/")
            expect(count).to_have_text("3 comments")
            expect(page.locator("#invalidations-panel")).to_contain_text(f"post:{HELLO}")
            page.screenshot(path=images / "home.png")
            if debug_on is not None:
                debug_on()
                show_the_panel(page, base, images)
        finally:
            browser.close()


@pytest.mark.django_db(transaction=True)
def test_browser_register_mailbox_and_comment(live_site, seeded, images, settings):
    chromium = chromium_or_skip()
    toolbar = django_settings.DEBUG_TOOLBAR  # the site in development, toolbar installed
    # No worker here (test_site.py has the queue): the mail tasks run right after commit.
    settings.TASKS = {**settings.TASKS, "mail": settings.TASKS["default"]}

    def debug_on():
        settings.DEBUG = True  # pytest-django runs the live server with DEBUG off

    debug_on = debug_on if toolbar else None

    # Playwright's sync API runs an asyncio event loop in the thread that calls it,
    # and Django refuses database access in a thread with a running event loop
    # (SynchronousOnlyOperation) - which this test thread needs, before and after,
    # and which pytest-django needs to flush the database at teardown. So the
    # browser runs in a thread of its own and no DJANGO_ALLOW_ASYNC_UNSAFE is needed;
    # the live server answers from its own thread, as it always does.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(browse, live_site.url, chromium, images, debug_on).result(timeout=180)

    assert (
        Mail.objects.filter(
            to="erin@example.com", subject="Welcome to Signalhooks Sample Blog, erin!"
        ).count()
        == 1
    )
    assert Post.objects.get(slug=HELLO).comment_count == (4 if toolbar else 3)
    for name in ("home.png", "mailbox.png", *(["debug-toolbar.png"] if toolbar else [])):
        assert (images / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_live_site_shares_the_in_memory_database_connection(live_site):
    # Its request threads use the test's connection instead of leaking their own.
    shared = live_site.thread.connections_override
    assert list(shared) == ["default"]
    assert shared["default"] is connections["default"]
