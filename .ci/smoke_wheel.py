"""Smoke-test the installed wheel of django-signalhooks (run by .ci/run in a clean venv).

Usage: ``python .ci/smoke_wheel.py path/to/django_signalhooks-X.tar.gz`` from a directory
outside the repository, with only the wheel (and its dependencies) installed: what is
checked is what a user gets from ``pip install django-signalhooks``. Nothing in such an
environment patches Django (no django-stubs-ext ``monkeypatch()``), so a generic evaluated at
run time crashes here: the Django part runs rules, many-to-many changes from both sides, a
counter, ``cached()`` / ``is_cached()`` and the welcome mail, on Django's LocMem cache and, when
a ``redis-server`` is on PATH, on django-redis (a server of its own on a free port).
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from importlib import metadata
from pathlib import Path

SHIPPED = (
    "py.typed",
    "templates/signalhooks/welcome.html",
    "templates/signalhooks/welcome.txt",
    "templates/signalhooks/welcome_subject.txt",
    "migrations/0001_initial.py",
    "migrations/0004_welcome_mail_claims.py",
    "contrib/debug_toolbar/panel.py",
    "contrib/debug_toolbar/templates/signalhooks/debug_toolbar/panel.html",
    "testing.py",
)


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"smoke test failed: {message}")


def check_metadata() -> None:
    dist = metadata.distribution("django-signalhooks")
    check(dist.metadata["Name"] == "django-signalhooks", f"name is {dist.metadata['Name']!r}")
    classifiers = dist.metadata.get_all("Classifier") or []
    for wanted in ("Framework :: Django :: 6.1", "Programming Language :: Python :: 3.13"):
        check(wanted in classifiers, f"classifier {wanted!r} missing")
    files = {str(f) for f in dist.files or ()}
    for name in SHIPPED:
        check(f"signalhooks/{name}" in files, f"the wheel lacks signalhooks/{name}")
    check(not any(f.startswith(("tests/", "sample_project/")) for f in files), "tests shipped")
    plugins = metadata.entry_points(group="pytest11", name="signalhooks")
    check([p.value for p in plugins] == ["signalhooks.testing"], "pytest11 entry point missing")


def check_sdist(path: Path) -> None:
    with tarfile.open(path) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for name in SHIPPED:
        check(f"src/signalhooks/{name}" in names, f"the sdist lacks src/signalhooks/{name}")
    for name in ("LICENSE", "README.md", "pyproject.toml"):
        check(name in names, f"the sdist lacks {name}")


SMOKE_MODELS = """
from django.db import models

from signalhooks import counter


class Tag(models.Model):
    name = models.CharField(max_length=50)


class Article(models.Model):
    slug = models.CharField(max_length=50)
    comment_count = models.IntegerField(default=0)
    tags = models.ManyToManyField(Tag, related_name="articles", blank=True)


class Comment(models.Model):
    article = models.ForeignKey(Article, on_delete=models.CASCADE)


counter(Comment, "article", "comment_count")
"""


def smoke_app() -> None:
    """Write a small app (``smokeapp``) into a temporary directory on sys.path."""
    root = Path(tempfile.mkdtemp(prefix="signalhooks-smoke-"))
    atexit.register(shutil.rmtree, root, True)
    (root / "smokeapp").mkdir()
    (root / "smokeapp" / "__init__.py").write_text("")
    (root / "smokeapp" / "models.py").write_text(SMOKE_MODELS)
    sys.path.insert(0, str(root))


def redis_url() -> str | None:
    """Start a redis-server on a free port if there is one on PATH; return its URL."""
    executable = shutil.which("redis-server")
    if executable is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    atexit.register(server.wait)
    atexit.register(server.terminate)
    for _ in range(500):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return f"redis://127.0.0.1:{port}/0"
        time.sleep(0.02)
    sys.exit(f"smoke test failed: redis-server did not start on port {port}")


def check_django() -> None:
    import django
    from django.conf import settings

    mail = (
        {"MAILERS": {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}}
        if django.VERSION >= (6, 1)
        else {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    )
    caches = {"locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    url = redis_url()
    if url is not None:  # the django-redis paths: pipelined flush, scripts, patterns
        caches["redis"] = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url}
    else:
        print("no redis-server on PATH: the smoke test covers Django's LocMem cache only")
    smoke_app()
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "signalhooks",
            "smokeapp",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={"default": caches["locmem"], **caches},
        TEMPLATES=[
            {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
        ],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        SECRET_KEY="smoke-test-only",  # signs the Message-ID and the activation links
        DEFAULT_FROM_EMAIL="smoke@example.com",
        SIGNALHOOKS={"SITE_NAME": "Smoke"},
        **mail,
    )
    django.setup()

    import signalhooks

    check("site-packages" in signalhooks.__file__, f"imported {signalhooks.__file__}")
    from django.contrib.auth.models import User
    from django.core import mail as outbox
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", run_syncdb=True, verbosity=0)  # the migrations shipped
    check("signalhooks_welcomemail" in connection.introspection.table_names(), "no migration")
    call_command("check", fail_level="WARNING")
    User.objects.create_user("ada", "ada@example.com", "pw")  # the templates shipped
    sent = getattr(outbox, "outbox", [])
    check(len(sent) == 1 and "Smoke" in sent[0].subject, f"welcome mail: {sent!r}")
    check(bool(sent[0].alternatives), "the welcome mail has no HTML part")
    from signalhooks.testing import record_signalhooks

    with record_signalhooks() as record:
        User.objects.create_user("bob", "bob@example.com", "pw")
    record.assert_mail_queued(to="bob@example.com")
    for alias in caches:
        check_rules(alias)
    from django.db.models import Field

    # Nothing here made Django's generics subscriptable at run time (django-stubs-ext's
    # monkeypatch(), which some packages call, would hide a Field[...] outside annotations).
    check(not hasattr(Field, "__class_getitem__"), "something patched django.db.models.Field")


def check_rules(alias: str) -> None:
    """Rules, m2m changes from both sides, a counter and cached() on the cache ``alias``."""
    from django.core.cache import caches
    from smokeapp.models import Article, Comment, Tag  # type: ignore[import-not-found]

    from signalhooks import cached, invalidate, is_cached

    cache = caches[alias]
    patterns = ["list:{slug}:*"] if alias == "redis" else []
    invalidate(Article, keys=["article:{slug}"], tags=["articles"], patterns=patterns, cache=alias)
    invalidate(Tag, keys=["tag:{name}"], cache=alias)
    a = Article.objects.create(slug=f"a-{alias}")
    b = Article.objects.create(slug=f"b-{alias}")
    news = Tag.objects.create(name=f"news-{alias}")
    keys = [f"article:{a.slug}", f"article:{b.slug}", f"tag:{news.name}"]
    if patterns:
        keys.append(f"list:{a.slug}:1")
    steps = [
        (lambda: a.tags.add(news), {keys[0], keys[2]}),
        (lambda: a.tags.remove(news), {keys[0], keys[2]}),
        (lambda: news.articles.add(a, b), {keys[0], keys[1], keys[2]}),
        (lambda: news.articles.remove(b), {keys[1], keys[2]}),
        (lambda: a.tags.set([]), {keys[0], keys[2]}),
        (lambda: news.articles.set([a, b]), {keys[0], keys[1], keys[2]}),
        (lambda: news.articles.clear(), {keys[0], keys[1], keys[2]}),
        (lambda: a.tags.set([news]), {keys[0], keys[2]}),
        (lambda: a.tags.clear(), {keys[0], keys[2]}),
    ]
    for number, (step, gone) in enumerate(steps):
        cache.set_many(dict.fromkeys(keys, 1))
        step()
        if patterns:
            gone = gone | ({keys[3]} if keys[0] in gone else set())
        left = {k for k in keys if cache.get(k) is not None}
        check(left == set(keys) - gone, f"{alias}: m2m step {number} left {sorted(left)}")

    home = cached("home", lambda: "first", tags=["articles"], cache=alias)
    check(is_cached("home", tags=["articles"], cache=alias), f"{alias}: cached() stored nothing")
    cache.set(keys[0], 1)
    comment = Comment.objects.create(article=a)  # the counter runs the parent's rule
    a.refresh_from_db()
    check(a.comment_count == 1, f"{alias}: comment_count is {a.comment_count} after a comment")
    check(cache.get(keys[0]) is None, f"{alias}: the counter's parent kept its key")
    check(not is_cached("home", tags=["articles"], cache=alias), f"{alias}: the tag was kept")
    again = cached("home", lambda: "second", tags=["articles"], cache=alias)
    check((home, again) == ("first", "second"), f"{alias}: cached() gave {home!r}, {again!r}")
    comment.delete()
    a.refresh_from_db()
    check(a.comment_count == 0, f"{alias}: comment_count is {a.comment_count} after a delete")
    a.slug = f"a2-{alias}"
    cache.set_many(dict.fromkeys([keys[0], f"article:{a.slug}"], 1))
    a.save()  # old and new values of a template field
    gone = [k for k in (keys[0], f"article:{a.slug}") if cache.get(k) is None]
    check(len(gone) == 2, f"{alias}: a slug change invalidated only {gone}")


def main() -> None:
    check(not Path("src/signalhooks").exists(), "run me outside the repository")
    check_metadata()
    check_sdist(Path(sys.argv[1]))
    check_django()
    print("smoke test of the wheel passed:", metadata.version("django-signalhooks"))


if __name__ == "__main__":
    main()
