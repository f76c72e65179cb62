"""Run by tests/test_unpatched.py in a subprocess: signalhooks in a Django nothing patched.

The suite's own process imports django-tasks-db (and, on Django 5.2, django-tasks),
whose ``__init__`` calls ``django_stubs_ext.monkeypatch()``: that makes ``Field`` and
other Django classes subscriptable, so a generic evaluated at run time (``Field[Any,
Any]`` outside an annotation) passes there and crashes for a user without those
packages. This program blocks them, checks that nothing patched Django, runs
many-to-many changes from both sides, a counter, rules and the welcome mail, and
prints what it saw as JSON. Usage: ``python -m tests.unpatched_program REDIS_URL``.
"""

from __future__ import annotations

import json
import sys
import uuid

# As if they were not installed: an import of any of them raises ImportError.
for blocked in ("django_tasks", "django_tasks_db", "django_tasks_rq", "django_stubs_ext"):
    sys.modules[blocked] = None  # type: ignore[assignment]

import django  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db.models import Field  # noqa: E402

MAIL = "django.core.mail.backends.locmem.EmailBackend"


def unpatched() -> bool:
    return not hasattr(Field, "__class_getitem__")


def configure(redis_url: str) -> None:
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "signalhooks",
            "tests.cacheapp",
            "tests.relatedapp",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": redis_url,
                "KEY_PREFIX": f"unpatched-{uuid.uuid4().hex[:8]}",
            }
        },
        TEMPLATES=[
            {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
        ],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        SECRET_KEY="unpatched",
        DEFAULT_FROM_EMAIL="site@example.com",
        SIGNALHOOKS={"SITE_NAME": "Unpatched"},
        **(
            {"MAILERS": {"default": {"BACKEND": MAIL}}}
            if django.VERSION >= (6, 1)
            else {"EMAIL_BACKEND": MAIL}
        ),
    )
    django.setup()


def run() -> dict[str, object]:
    from django.contrib.auth.models import User
    from django.core import mail
    from django.core.cache import cache
    from django.core.management import call_command

    from signalhooks import invalidate
    from tests.cacheapp.models import Category, Entry
    from tests.relatedapp.models import Topic, Vote

    call_command("migrate", run_syncdb=True, verbosity=0)
    invalidate(Entry, keys=["entry:{slug}"])
    invalidate(Category, keys=["category:{name}"])
    invalidate(Topic, keys=["topic:{pk}"])  # the parent of the Vote counter

    entry = Entry.objects.create(title="e", slug="e")
    other = Entry.objects.create(title="o", slug="o")
    news = Category.objects.create(name="news")
    keys = ("entry:e", "entry:o", "category:news")
    steps = {
        "entry.categories.add(news)": lambda: entry.categories.add(news),
        "entry.categories.remove(news)": lambda: entry.categories.remove(news),
        "news.entries.add(entry, other)": lambda: news.entries.add(entry, other),
        "news.entries.remove(other)": lambda: news.entries.remove(other),
        "entry.categories.set([])": lambda: entry.categories.set([]),
        "news.entries.set([entry])": lambda: news.entries.set([entry]),
        "news.entries.clear()": lambda: news.entries.clear(),
        "entry.categories.set([news])": lambda: entry.categories.set([news]),
        "entry.categories.clear()": lambda: entry.categories.clear(),
    }
    gone: dict[str, list[str]] = {}
    for name, step in steps.items():
        cache.set_many(dict.fromkeys(keys, 1))
        step()
        gone[name] = sorted(k for k in keys if cache.get(k) is None)

    topic = Topic.objects.create()
    cache.set(f"topic:{topic.pk}", 1)
    Vote.objects.create(topic=topic)
    topic.refresh_from_db()

    User.objects.create_user("ada", "ada@example.com", "pw")
    return {
        "unpatched": unpatched(),
        "m2m": gone,
        "vote_count": topic.vote_count,
        "topic_key_gone": cache.get(f"topic:{topic.pk}") is None,
        "mails": [(m.to, m.subject) for m in getattr(mail, "outbox", [])],
    }


def main() -> None:
    before = unpatched()
    configure(sys.argv[1])
    result = {"unpatched_before": before, **run()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
