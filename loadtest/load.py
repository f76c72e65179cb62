"""The bounded concurrent load: readers, commenters, an admin editor and registrations.

Each actor is a thread with its own :class:`~loadtest.browser.Browser` and a think
time between requests, so the load is bounded by the number of actors, not by how
fast the server answers. Every request becomes one :class:`Sample`.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
import time
from dataclasses import dataclass, field

from .browser import Browser, Response, form_fields

PASSWORD = "sample-password"  # blog/seed.py's


@dataclass
class Sample:
    at: float  # seconds since the run started
    seconds: float
    kind: str
    outcome: str  # ok, 5xx, 4xx, moved (404 after a slug edit), refused (no answer)
    phase: str


@dataclass
class Recorder:
    """Collect samples; the driver moves :attr:`phase` as it injects faults."""

    start: float = field(default_factory=time.monotonic)
    phase: str = "setup"
    samples: list[Sample] = field(default_factory=list)
    windows: list[tuple[str, float, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.start

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)


@dataclass
class Site:
    """What the actors share: the server's port, the hot posts' current slugs."""

    port: int
    recorder: Recorder
    slugs: dict[int, str]  # hot post pk -> current slug (the editor moves them)
    cold: list[str]  # slugs of posts only the driver edits, during faults
    authors: list[str]
    run_id: str
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    registered: list[str] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def hot_post(self) -> tuple[int, str]:
        with self.lock:
            return random.choice(list(self.slugs.items()))


class Actor(threading.Thread):
    """One visitor doing :meth:`step` again and again until the site's stop event."""

    think = 0.1

    def __init__(self, site: Site, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.site = site
        self.browser = Browser(site.port)

    def run(self) -> None:
        while not self.site.stop.is_set():
            with contextlib.suppress(_Failed):  # recorded; the next step starts afresh
                self.step()
            self.site.stop.wait(self.think * random.uniform(0.5, 1.5))

    def step(self) -> None:
        raise NotImplementedError

    def call(
        self,
        kind: str,
        method: str,
        path: str,
        form: list[tuple[str, str]] | None = None,
        expect: tuple[int, ...] = (200,),
        moved_ok: bool = False,
    ) -> Response:
        """Send one request, record it, and raise :class:`_Failed` unless it is expected."""
        recorder = self.site.recorder
        at, phase = recorder.now(), recorder.phase
        try:
            response = self.browser.request(method, path, form)
        except (OSError, ConnectionError, TimeoutError) as error:  # noqa: UP041 - explicit
            recorder.add(Sample(at, recorder.now() - at, kind, "refused", phase))
            raise _Failed from error
        if response.status in expect:
            outcome = "ok"
        elif response.status == 404 and moved_ok:
            outcome = "moved"
        elif response.status >= 500:
            outcome = "5xx"
        else:
            outcome = "4xx"
        recorder.add(Sample(at, response.seconds, kind, outcome, phase))
        if outcome != "ok":
            raise _Failed
        return response


class _Failed(Exception):
    pass


class Reader(Actor):
    think = 0.05

    def step(self) -> None:
        choice = random.random()
        if choice < 0.3:
            self.call("read", "GET", "/")
        elif choice < 0.6:
            _, slug = self.site.hot_post()
            self.call("read", "GET", f"/posts/{slug}/", moved_ok=True)
        elif choice < 0.8:
            self.call("read", "GET", f"/posts/{random.choice(self.site.cold)}/")
        else:
            self.call("read", "GET", f"/authors/{random.choice(self.site.authors)}/")


class LoggedIn(Actor):
    """An actor that logs in first (and again whenever its session is gone)."""

    username = ""
    login_path = "/accounts/login/"

    def __init__(self, site: Site, name: str, username: str) -> None:
        super().__init__(site, name)
        self.username = username
        self.logged_in = False

    def run(self) -> None:
        while not self.site.stop.is_set() and not self.logged_in:
            try:
                self.log_in()
            except _Failed:
                self.site.stop.wait(0.5)
        super().run()

    def log_in(self) -> None:
        page = self.call("login", "GET", self.login_path)
        form = [
            ("csrfmiddlewaretoken", self.browser.csrf(page.body)),
            ("username", self.username),
            ("password", PASSWORD),
        ]
        self.call("login", "POST", self.login_path, form, expect=(302,))
        self.logged_in = True


class Commenter(LoggedIn):
    think = 0.3

    def step(self) -> None:
        _, slug = self.site.hot_post()
        page = self.call("read", "GET", f"/posts/{slug}/", moved_ok=True)
        n = next(self.site.counter)
        form = [
            ("csrfmiddlewaretoken", self.browser.csrf(page.body)),
            ("body", f"Comment {n} by {self.username} under load."),
        ]
        self.call("comment", "POST", f"/posts/{slug}/", form, expect=(302,), moved_ok=True)


class Editor(LoggedIn):
    """The admin editing hot posts' titles and, every other time, their slugs."""

    think = 1.0
    login_path = "/admin/login/"

    def log_in(self) -> None:
        page = self.call("login", "GET", self.login_path)
        form = [
            ("csrfmiddlewaretoken", self.browser.csrf(page.body)),
            ("username", self.username),
            ("password", PASSWORD),
            ("next", "/admin/"),
        ]
        self.call("login", "POST", self.login_path, form, expect=(302,))
        self.logged_in = True

    def step(self) -> None:
        pk, slug = self.site.hot_post()
        n = next(self.site.counter)
        base = slug.removesuffix("-moved")
        moved = slug.endswith("-moved") or n % 2
        new_slug = self.edit(pk, base if moved else f"{base}-moved", n)
        with self.site.lock:
            self.site.slugs[pk] = new_slug

    def edit(self, pk: int, slug: str, n: int) -> str:
        """Give post ``pk`` a new title (edit ``n``) and ``slug`` through its admin form."""
        path = f"/admin/blog/post/{pk}/change/"
        page = self.call("admin-edit", "GET", path)
        fields = dict.fromkeys(("title", "slug"))
        form = [(k, v) for k, v in form_fields(page.body, "post_form") if k not in fields]
        title = slug.removesuffix("-moved").replace("-", " ").capitalize()
        form += [("title", f"{title} (edit {n})"), ("slug", slug), ("_save", "Save")]
        self.call("admin-edit", "POST", path, form, expect=(302,))
        return slug


class Registrar(Actor):
    """New visitors signing up through the real form (CSRF, then the POST)."""

    think = 0.4

    def step(self) -> None:
        self.browser = Browser(self.site.port)  # a new visitor each time
        page = self.call("register", "GET", "/accounts/register/")
        username = f"load-{self.site.run_id}-{next(self.site.counter)}"
        form = [
            ("csrfmiddlewaretoken", self.browser.csrf(page.body)),
            ("username", username),
            ("email", f"{username}@load.signalhooks.test"),
            ("password1", "Load-test-passw0rd"),
            ("password2", "Load-test-passw0rd"),
        ]
        self.call("register", "POST", "/accounts/register/", form, expect=(302,))
        with self.site.lock:
            self.site.registered.append(username)


def actors(site: Site, readers: int, commenters: list[str], editor: str) -> list[Actor]:
    """Return the actors of one run (not started)."""
    made: list[Actor] = [Reader(site, f"reader-{i}") for i in range(readers)]
    made += [Commenter(site, f"commenter-{u}", u) for u in commenters]
    made += [Editor(site, "editor", editor), Registrar(site, "registrar")]
    return made
